"""Faces: YuNet finds them, FaceNet says who they are.

Both models install from a package registry (MODELS.md). YuNet runs through OpenCV's DNN
module on the CPU: it is tiny (232 KB) and detection is per frame anyway. FaceNet runs in
torch, on the GPU when there is one, and is fed faces from many frames in one batch
(``embed_many``), because at scale the forward pass is paid per batch, not per face.

Faces are aligned before embedding: a similarity transform (rotation, uniform scale, shift)
puts the five landmarks where the template below says, so a tilted head or a detector box
that sits a little high does not move the crop. The template frames the face as tightly
as the box crops this FaceNet was trained on (see ``FACENET_TEMPLATE`` for the measurements).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt
import torch

from monitor.errors import WeightsError
from monitor.likeness.embedders.base import (
    Box,
    DetectedFace,
    Embeddings,
    FaceDetector,
    FaceEmbedder,
    default_device,
)
from monitor.likeness.embedders.facenet_convert import load_facenet
from monitor.likeness.embedders.inception_resnet_v1 import INPUT_SIZE, standardize
from monitor.media.frames import RGBImage

__all__ = [
    "FACENET_TEMPLATE",
    "FaceNetEmbedder",
    "YuNetDetector",
    "align_face",
    "similarity_transform",
]

FACENET_TEMPLATE: npt.NDArray[np.float32] = (
    np.array(
        [
            [0.330, 0.392],  # right eye (image left)
            [0.670, 0.392],  # left eye
            [0.500, 0.591],  # nose tip
            [0.349, 0.731],  # right mouth corner
            [0.651, 0.731],  # left mouth corner
        ],
        dtype=np.float32,
    )
    * INPUT_SIZE
)
"""Where the five landmarks land in the 160x160 FaceNet crop (YuNet's order, image x/y).

It is where YuNet's landmarks sit, on average, inside a square crop of YuNet's own box (63
faces of eval-media, made left-right symmetric): this model was trained on tight crops, and
on the eval-media actors wider framings separated identities worse (ArcFace's template shrunk
to leave MTCNN-like margins: d' 4.9 against 6.5). Against the plain square box crop it ties on
upright faces and wins once heads roll (half the photos turned 20 degrees: d' 6.4 against 5.4).
"""


class YuNetDetector(FaceDetector):
    """OpenCV's YuNet (2023mar): boxes, scores and five landmarks per face.

    Frames larger than ``max_side`` are searched on a downscaled copy and the results mapped
    back, which keeps a 4K frame as cheap as a 720p one; faces smaller than ``min_face`` pixels
    (in the original frame) are dropped, since FaceNet cannot tell who they are anyway. A 720p
    frame costs about 60 ms on one CPU core at full size, 30 ms at ``max_side=960`` and 13 ms
    at 640, but downscaling loses faces under about 30 pixels (t1.jpg shrunk to 24-pixel faces
    in a 720p frame: 6 of 6 found at full size, 5 at 960, 2 at 640), hence the default.
    One instance is safe to share between threads (OpenCV's detector keeps per-call state,
    so calls are serialised).
    """

    name = "yunet-2023mar"

    def __init__(
        self,
        model_path: Path,
        *,
        score_threshold: float = 0.8,
        nms_threshold: float = 0.3,
        min_face: int = 24,
        max_side: int = 1280,
        top_k: int = 5000,
    ) -> None:
        path = Path(model_path)
        if not path.is_file():
            raise WeightsError(f"{path}: YuNet model not found")
        try:
            self._detector = cv2.FaceDetectorYN.create(
                str(path), "", (320, 320), score_threshold, nms_threshold, top_k
            )
        except cv2.error as exc:
            raise WeightsError(f"{path}: OpenCV cannot load it as YuNet: {exc}") from exc
        self.min_face = min_face
        self.max_side = max_side
        self._lock = threading.Lock()

    def detect(self, image: RGBImage) -> list[DetectedFace]:
        height, width = int(image.shape[0]), int(image.shape[1])
        scale = min(1.0, self.max_side / max(height, width))
        bgr = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
        if scale < 1.0:
            size = (max(1, round(width * scale)), max(1, round(height * scale)))
            bgr = cv2.resize(bgr, size, interpolation=cv2.INTER_AREA)
        with self._lock:
            self._detector.setInputSize((int(bgr.shape[1]), int(bgr.shape[0])))
            _, found = self._detector.detect(bgr)
        if found is None:
            return []
        faces = []
        for row in np.asarray(found, dtype=np.float32):
            x, y, w, h = (row[:4] / scale).tolist()
            if min(w, h) < self.min_face:
                continue
            x0, y0 = max(0, round(x)), max(0, round(y))
            x1, y1 = min(width, round(x + w)), min(height, round(y + h))
            if x1 <= x0 or y1 <= y0:
                continue
            faces.append(
                DetectedFace(
                    box=Box(x0, y0, x1 - x0, y1 - y0),
                    score=float(row[14]),
                    landmarks=(row[4:14].reshape(5, 2) / scale).astype(np.float32),
                )
            )
        faces.sort(key=lambda f: f.box.width * f.box.height, reverse=True)
        return faces


def similarity_transform(
    src: npt.NDArray[np.float32], dst: npt.NDArray[np.float32]
) -> npt.NDArray[np.float64]:
    """The 2x3 rotation + uniform scale + shift that maps ``src`` points onto ``dst`` best.

    Least squares over all points, in closed form: deterministic, unlike OpenCV's robust
    estimators, which sample and may drop a landmark as an outlier.
    """
    rows = []
    values = []
    for (x, y), (u, v) in zip(src.astype(np.float64), dst.astype(np.float64), strict=True):
        rows += [[x, -y, 1.0, 0.0], [y, x, 0.0, 1.0]]
        values += [u, v]
    a, b, tx, ty = np.linalg.lstsq(np.array(rows), np.array(values), rcond=None)[0]
    return np.array([[a, -b, tx], [b, a, ty]], dtype=np.float64)


def align_face(
    image: RGBImage,
    landmarks: npt.NDArray[np.float32],
    *,
    size: int = INPUT_SIZE,
    template: npt.NDArray[np.float32] = FACENET_TEMPLATE,
) -> RGBImage:
    """The ``size`` x ``size`` crop whose landmarks sit on ``template`` (outside: black)."""
    matrix = similarity_transform(landmarks, template * (size / INPUT_SIZE))
    source = image
    # Warping reads one source pixel per output pixel: a face much larger than the crop would
    # alias. Shrink the region around it with area averaging first, then warp the rest.
    scale = float(np.hypot(matrix[0, 0], matrix[1, 0]))
    if scale < 0.5:
        inverse = cv2.invertAffineTransform(matrix)
        corners = np.array([[0, 0, 1], [size, 0, 1], [0, size, 1], [size, size, 1]], float)
        src = corners @ inverse.T
        x0, y0 = np.floor(src.min(axis=0)).astype(int)
        x1, y1 = np.ceil(src.max(axis=0)).astype(int)
        x0, y0 = max(0, x0), max(0, y0)
        x1, y1 = min(image.shape[1], x1), min(image.shape[0], y1)
        if x1 - x0 >= 2 and y1 - y0 >= 2:
            shrink = 2.0 * scale
            region = image[y0:y1, x0:x1]
            out_w = max(1, round(region.shape[1] * shrink))
            out_h = max(1, round(region.shape[0] * shrink))
            source = np.asarray(
                cv2.resize(region, (out_w, out_h), interpolation=cv2.INTER_AREA), dtype=np.uint8
            )
            fx, fy = out_w / region.shape[1], out_h / region.shape[0]
            # new = old_transform o (undo resize) o (shift by region origin)
            undo = np.array([[1 / fx, 0, x0], [0, 1 / fy, y0], [0, 0, 1]], dtype=np.float64)
            matrix = matrix @ undo
    aligned = cv2.warpAffine(
        source, matrix, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT
    )
    return np.ascontiguousarray(aligned, dtype=np.uint8)


class FaceNetEmbedder(FaceEmbedder):
    """FaceNet (Inception-ResNet-v1, MS-Celeb-1M) 128-d identity embeddings, batched.

    ``weights_path`` is the safetensors file made by ``facenet_convert``. Measured on the
    eval-media photos (14 people, 63 faces, 2026-11-26): photos of one person 0.58-0.97 cosine,
    of different people at most 0.60; a case photo against its actor's references (best of
    them) at least 0.78, against any other actor's at most 0.60.
    """

    name = "facenet-keras-2024/align5-v1"
    dim = 128

    def __init__(self, weights_path: Path, device: str | None = None, batch_size: int = 32) -> None:
        self.device = device or default_device()
        self.batch_size = max(1, batch_size)
        self.model = load_facenet(Path(weights_path), self.device)
        if self.device == "cpu":
            self.model = self.model.to(memory_format=torch.channels_last)

    def embed_faces(self, image: RGBImage, faces: Sequence[DetectedFace]) -> Embeddings:
        return self.embed_aligned([align_face(image, face.landmarks) for face in faces])

    def embed_many(self, items: Sequence[tuple[RGBImage, DetectedFace]]) -> Embeddings:
        """Faces from many frames in one pass: ``(len(items), 128)``, in the order given."""
        return self.embed_aligned([align_face(image, face.landmarks) for image, face in items])

    def embed_aligned(self, crops: Sequence[RGBImage]) -> Embeddings:
        """Embed ``(160, 160, 3)`` uint8 RGB crops, such as ``align_face`` makes."""
        if not crops:
            return np.zeros((0, self.dim), dtype=np.float32)
        for i, crop in enumerate(crops):
            if crop.shape != (INPUT_SIZE, INPUT_SIZE, 3) or crop.dtype != np.uint8:
                raise ValueError(
                    f"crop {i}: expected ({INPUT_SIZE}, {INPUT_SIZE}, 3) uint8, "
                    f"got {crop.shape} {crop.dtype}"
                )
        out = np.empty((len(crops), self.dim), dtype=np.float32)
        with torch.inference_mode():
            for start in range(0, len(crops), self.batch_size):
                batch = np.stack(crops[start : start + self.batch_size])
                pixels = torch.from_numpy(batch).to(self.device).permute(0, 3, 1, 2)
                x = standardize(pixels)
                if self.device == "cpu":
                    x = x.contiguous(memory_format=torch.channels_last)
                out[start : start + len(batch)] = self.model(x).float().cpu().numpy()
        return out
