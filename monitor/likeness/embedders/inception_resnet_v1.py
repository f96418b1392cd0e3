"""Inception-ResNet-v1, the FaceNet identity network, as a plain torch module.

The face identity weights that install without a model hub ship as a Keras file (see
MODELS.md); rather than carry TensorFlow into the scorer, the network is rebuilt here in torch
and the weights are converted once (``facenet_convert``). The layout, the block scales and the
state-dict names follow Tim Esler's facenet-pytorch (MIT licence,
https://github.com/timesler/facenet-pytorch), itself a port of David Sandberg's TF-slim FaceNet,
so a facenet-pytorch checkpoint (512-d) also loads with ``embedding_dim=512``. It is written out
again rather than imported because facenet-pytorch pins torch < 2.3 and downloads its own weights.

Only stable torch building blocks are used (``Conv2d``, ``BatchNorm``, ``MaxPool2d``,
``Linear``), so the module loads the same on the torch of a GPU box.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["INPUT_SIZE", "InceptionResnetV1", "standardize"]

INPUT_SIZE = 160
"""Side in pixels of the square face crop the network was trained on."""

# Keras/TF-slim batch-norm epsilon; torch's default (1e-5) would shift every activation.
_BN_EPS = 1e-3


def standardize(images: torch.Tensor) -> torch.Tensor:
    """FaceNet's per-image whitening: ``(x - mean) / max(std, 1 / sqrt(N))`` over each image.

    Takes ``(n, 3, h, w)`` pixel values in 0..255 (uint8 or float) and returns float32; the
    floor on the deviation keeps a flat grey crop from blowing up.
    """
    x = images.to(torch.float32)
    flat = x.flatten(1)
    mean = flat.mean(dim=1)
    floor = 1.0 / float(flat.shape[1]) ** 0.5
    std = flat.std(dim=1, correction=0).clamp(min=floor)
    return (x - mean.view(-1, 1, 1, 1)) / std.view(-1, 1, 1, 1)


class BasicConv2d(nn.Module):
    """Convolution without bias, batch norm, ReLU: the unit every branch is made of."""

    def __init__(
        self,
        in_planes: int,
        out_planes: int,
        kernel_size: int | tuple[int, int],
        stride: int = 1,
        padding: int | tuple[int, int] = 0,
    ) -> None:
        super().__init__()
        self.conv = nn.Conv2d(
            in_planes, out_planes, kernel_size, stride=stride, padding=padding, bias=False
        )
        self.bn = nn.BatchNorm2d(out_planes, eps=_BN_EPS)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.bn(self.conv(x)))


class Block35(nn.Module):
    """Inception-ResNet-A: residual block at 17x17 with 256 channels."""

    def __init__(self, scale: float) -> None:
        super().__init__()
        self.scale = scale
        self.branch0 = BasicConv2d(256, 32, 1)
        self.branch1 = nn.Sequential(BasicConv2d(256, 32, 1), BasicConv2d(32, 32, 3, padding=1))
        self.branch2 = nn.Sequential(
            BasicConv2d(256, 32, 1),
            BasicConv2d(32, 32, 3, padding=1),
            BasicConv2d(32, 32, 3, padding=1),
        )
        self.conv2d = nn.Conv2d(96, 256, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.cat((self.branch0(x), self.branch1(x), self.branch2(x)), 1)
        return torch.relu(self.conv2d(out) * self.scale + x)


class Block17(nn.Module):
    """Inception-ResNet-B: residual block at 8x8 with 896 channels."""

    def __init__(self, scale: float) -> None:
        super().__init__()
        self.scale = scale
        self.branch0 = BasicConv2d(896, 128, 1)
        self.branch1 = nn.Sequential(
            BasicConv2d(896, 128, 1),
            BasicConv2d(128, 128, (1, 7), padding=(0, 3)),
            BasicConv2d(128, 128, (7, 1), padding=(3, 0)),
        )
        self.conv2d = nn.Conv2d(256, 896, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.cat((self.branch0(x), self.branch1(x)), 1)
        return torch.relu(self.conv2d(out) * self.scale + x)


class Block8(nn.Module):
    """Inception-ResNet-C: residual block at 3x3 with 1792 channels (the last one has no ReLU)."""

    def __init__(self, scale: float, relu: bool = True) -> None:
        super().__init__()
        self.scale = scale
        self.branch0 = BasicConv2d(1792, 192, 1)
        self.branch1 = nn.Sequential(
            BasicConv2d(1792, 192, 1),
            BasicConv2d(192, 192, (1, 3), padding=(0, 1)),
            BasicConv2d(192, 192, (3, 1), padding=(1, 0)),
        )
        self.conv2d = nn.Conv2d(384, 1792, 1)
        self.relu = relu

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.cat((self.branch0(x), self.branch1(x)), 1)
        out = self.conv2d(out) * self.scale + x
        return torch.relu(out) if self.relu else out


class Mixed6a(nn.Module):
    """Reduction-A: 17x17x256 -> 8x8x896."""

    def __init__(self) -> None:
        super().__init__()
        self.branch0 = BasicConv2d(256, 384, 3, stride=2)
        self.branch1 = nn.Sequential(
            BasicConv2d(256, 192, 1),
            BasicConv2d(192, 192, 3, padding=1),
            BasicConv2d(192, 256, 3, stride=2),
        )
        self.branch2 = nn.MaxPool2d(3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat((self.branch0(x), self.branch1(x), self.branch2(x)), 1)


class Mixed7a(nn.Module):
    """Reduction-B: 8x8x896 -> 3x3x1792."""

    def __init__(self) -> None:
        super().__init__()
        self.branch0 = nn.Sequential(BasicConv2d(896, 256, 1), BasicConv2d(256, 384, 3, stride=2))
        self.branch1 = nn.Sequential(BasicConv2d(896, 256, 1), BasicConv2d(256, 256, 3, stride=2))
        self.branch2 = nn.Sequential(
            BasicConv2d(896, 256, 1),
            BasicConv2d(256, 256, 3, padding=1),
            BasicConv2d(256, 256, 3, stride=2),
        )
        self.branch3 = nn.MaxPool2d(3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat((self.branch0(x), self.branch1(x), self.branch2(x), self.branch3(x)), 1)


class InceptionResnetV1(nn.Module):
    """FaceNet's Inception-ResNet-v1 trunk with a bias-free bottleneck and batch norm on top.

    Input: ``(n, 3, 160, 160)`` float, RGB, each image standardised on its own
    (``standardize``). ``forward`` returns L2-normalised ``(n, embedding_dim)`` rows;
    ``features`` the same rows before normalisation.
    """

    def __init__(self, embedding_dim: int = 128) -> None:
        super().__init__()
        self.embedding_dim = embedding_dim
        self.conv2d_1a = BasicConv2d(3, 32, 3, stride=2)
        self.conv2d_2a = BasicConv2d(32, 32, 3)
        self.conv2d_2b = BasicConv2d(32, 64, 3, padding=1)
        self.maxpool_3a = nn.MaxPool2d(3, stride=2)
        self.conv2d_3b = BasicConv2d(64, 80, 1)
        self.conv2d_4a = BasicConv2d(80, 192, 3)
        self.conv2d_4b = BasicConv2d(192, 256, 3, stride=2)
        self.repeat_1 = nn.Sequential(*(Block35(scale=0.17) for _ in range(5)))
        self.mixed_6a = Mixed6a()
        self.repeat_2 = nn.Sequential(*(Block17(scale=0.10) for _ in range(10)))
        self.mixed_7a = Mixed7a()
        self.repeat_3 = nn.Sequential(*(Block8(scale=0.20) for _ in range(5)))
        self.block8 = Block8(scale=1.0, relu=False)
        self.avgpool_1a = nn.AdaptiveAvgPool2d(1)
        self.last_linear = nn.Linear(1792, embedding_dim, bias=False)
        self.last_bn = nn.BatchNorm1d(embedding_dim, eps=_BN_EPS)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Embeddings before L2 normalisation (what the Keras model outputs)."""
        x = self.conv2d_1a(x)
        x = self.conv2d_2a(x)
        x = self.conv2d_2b(x)
        x = self.maxpool_3a(x)
        x = self.conv2d_3b(x)
        x = self.conv2d_4a(x)
        x = self.conv2d_4b(x)
        x = self.repeat_1(x)
        x = self.mixed_6a(x)
        x = self.repeat_2(x)
        x = self.mixed_7a(x)
        x = self.repeat_3(x)
        x = self.block8(x)
        x = self.avgpool_1a(x).flatten(1)
        out: torch.Tensor = self.last_bn(self.last_linear(x))
        return out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.features(x), p=2.0, dim=1)
