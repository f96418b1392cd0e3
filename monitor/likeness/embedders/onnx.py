"""The bundled backbones run by ONNX Runtime on a CPU: the same features, three times as fast.

PyTorch's eager CPU kernels spend most of an EfficientNet's time outside the arithmetic: each
depthwise convolution, activation and residual add is its own pass over memory, in its own
call. ONNX Runtime runs the same graph with those fused and its CPU kernels tuned for them;
measured side by side on a 2-core CPU (``bench.scorer``), the visual stage is about three times
as fast, with features within 3e-7 of torch's (so galleries are shared between the two, and the
model's name does not change). A GPU keeps torch: cuDNN is fast already, and there the work is
batched and in half precision.

The graph is the whole of what the torch embedder does after resizing: uint8 pixels in (NHWC,
as they come from OpenCV), the normalisation, the backbone, unit-length features out. It is
exported from the torch module once and kept in a folder keyed by everything that shapes it
(the weights, the input size, the exporter's version), so a worker's start costs a file read;
without a folder it is exported in memory, about three seconds.
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import os
import tempfile
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import torch

from monitor.errors import EmbedderConfigError

__all__ = ["GRAPH_FORMAT", "OnnxFeatures", "graph_key", "onnxruntime_available"]

log = logging.getLogger(__name__)

GRAPH_FORMAT = "likeness-onnx-1"
"""Changes whenever what the exported graph computes changes, so old cached graphs are not read."""

_OPSET = 17


def onnxruntime_available() -> bool:
    """Whether ONNX Runtime is installed (it is a dependency; a trimmed image may lack it)."""
    return importlib.util.find_spec("onnxruntime") is not None


def graph_key(name: str, module: torch.nn.Module, input_size: int) -> str:
    """What a cached graph is looked up by: the embedder's name, every weight's bytes, the input
    size, torch's version (the exporter) and ``GRAPH_FORMAT``."""
    digest = hashlib.sha256(f"{GRAPH_FORMAT}\0{name}\0{input_size}\0{torch.__version__}".encode())
    for key, tensor in module.state_dict().items():
        digest.update(key.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()[:24]


class _Graph(torch.nn.Module):
    """``rows`` (the torch embedder's own pixels-to-unit-rows) as a module, its weights
    registered so the exporter sees them as weights."""

    def __init__(
        self, module: torch.nn.Module, rows: Callable[[torch.Tensor], torch.Tensor]
    ) -> None:
        super().__init__()
        self.module = module
        self._rows = rows

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        return self._rows(pixels)


class OnnxFeatures:
    """A torch embedder's graph in an ONNX Runtime session: ``rows`` (``(n, size, size, 3)``
    uint8 pixels to ``(n, dim)`` unit rows, computed with ``module``) exported and run.

    ``threads`` is the session's intra-op pool (torch's own count by default). Its threads do not
    spin between calls: the scorer's decode processes and the face model share the cores.
    """

    def __init__(
        self,
        name: str,
        module: torch.nn.Module,
        rows: Callable[[torch.Tensor], torch.Tensor],
        *,
        input_size: int,
        cache: Path | None = None,
        threads: int | None = None,
    ) -> None:
        import onnxruntime as ort

        graph = _Graph(module, rows).eval()
        filename = f"{_safe(name)}-{graph_key(name, module, input_size)}.onnx"
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or torch.get_num_threads()
        options.inter_op_num_threads = 1
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL

        def session(model: bytes) -> Any:
            return ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])

        def exported() -> bytes:
            try:
                return _export(graph, input_size)
            except Exception as exc:  # the exporter raises whatever its tracer meets
                raise EmbedderConfigError(f"{name}: cannot export to ONNX: {exc}") from exc

        kept = _read(cache, filename)
        loaded: Any = None
        try:
            loaded = session(kept) if kept is not None else None
        except Exception as exc:  # ONNX Runtime raises its own untyped errors
            log.warning("the kept graph %s is unreadable (%s); exporting it again", filename, exc)
        if loaded is None:
            model = exported()
            try:
                loaded = session(model)
            except Exception as exc:
                raise EmbedderConfigError(f"{name}: ONNX Runtime cannot load it: {exc}") from exc
            _keep(cache, filename, model)
        self._session: Any = loaded
        self._input = self._session.get_inputs()[0].name

    def __call__(self, pixels: npt.NDArray[np.uint8]) -> npt.NDArray[np.float32]:
        (rows,) = self._session.run(None, {self._input: np.ascontiguousarray(pixels)})
        return np.asarray(rows, dtype=np.float32)


def _export(graph: _Graph, input_size: int) -> bytes:
    """The graph as ONNX bytes, its batch dimension free."""
    example = torch.zeros((2, input_size, input_size, 3), dtype=torch.uint8)
    for parameter in graph.parameters():
        parameter.requires_grad_(False)
    with (
        tempfile.TemporaryDirectory(prefix="likeness-onnx-") as folder,
        warnings.catch_warnings(),
        torch.no_grad(),
    ):
        # The TorchScript exporter: it needs no onnxscript and traces these plain CNNs exactly;
        # torch says it is deprecated in favour of the torch.export-based one.
        warnings.simplefilter("ignore")
        torch.onnx.export(
            graph,
            (example,),
            Path(folder) / "graph.onnx",
            input_names=["pixels"],
            output_names=["features"],
            dynamic_axes={"pixels": {0: "n"}, "features": {0: "n"}},
            opset_version=_OPSET,
            dynamo=False,
        )
        return (Path(folder) / "graph.onnx").read_bytes()


def _read(folder: Path | None, filename: str) -> bytes | None:
    if folder is None:
        return None
    try:
        return (folder / filename).read_bytes()
    except OSError:
        return None


def _keep(folder: Path | None, filename: str, data: bytes) -> None:
    """Write the graph atomically for the next start; a folder that cannot be written only
    costs the next start another export."""
    if folder is None:
        return
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, suffix=".partial", delete=False) as out:
            out.write(data)
        os.replace(out.name, folder / filename)
    except OSError as exc:
        log.warning("the exported graph could not be kept in %s: %s", folder, exc)


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)
