"""A small U-Net for EM membrane segmentation, built from spiking-convertible ops only.

Every op maps onto a rate-coded SNN: 3x3 convolutions, ReLUs (each its own ``nn.ReLU`` so
it exports as one ONNX Relu node with a stable name), average pooling (max pooling has no
exact spiking equivalent), 2x2 stride-2 transposed convolutions, channel concatenation for
skips, and no BatchNorm. Every linear layer is followed by a ReLU, so every layer is a
population of neurons; only the 1x1 head is read out, through a Sigmoid giving the
probability of cell interior.

``UNet(..., batchnorm=True, upsample="nearest")`` is the common PyTorch variant instead:
BatchNorm after every convolution and nearest-neighbour upsampling followed by a 3x3
convolution in place of the transposed convolutions (snncc folds the BatchNorm and fuses
the upsampling into the convolution).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


def _conv3x3(in_ch: int, out_ch: int, batchnorm: bool) -> nn.Module:
    """A 3x3 convolution, followed by BatchNorm if asked (the default model has none, and
    keeps its module names and so its ONNX node names)."""
    conv = nn.Conv2d(in_ch, out_ch, 3, padding=1)
    return nn.Sequential(conv, nn.BatchNorm2d(out_ch)) if batchnorm else conv


class ConvBlock(nn.Module):
    """Two 3x3 conv (+ BatchNorm) + ReLU triples at one resolution."""

    def __init__(self, in_ch: int, out_ch: int, batchnorm: bool = False) -> None:
        super().__init__()
        self.conv1 = _conv3x3(in_ch, out_ch, batchnorm)
        self.act1 = nn.ReLU()
        self.conv2 = _conv3x3(out_ch, out_ch, batchnorm)
        self.act2 = nn.ReLU()

    def forward(self, x: Tensor) -> Tensor:
        return self.act2(self.conv2(self.act1(self.conv1(x))))


class UpBlock(nn.Module):
    """2x upsampling followed by a ReLU: a 2x2 stride-2 transposed conv, or (``nearest``)
    nearest-neighbour upsampling and a 3x3 conv (+ BatchNorm)."""

    def __init__(
        self, in_ch: int, out_ch: int, upsample: str = "transpose", batchnorm: bool = False
    ) -> None:
        super().__init__()
        if upsample == "transpose":
            self.up: nn.Module = nn.ConvTranspose2d(in_ch, out_ch, kernel_size=2, stride=2)
        elif upsample == "nearest":
            self.up = nn.Sequential(
                nn.Upsample(scale_factor=2, mode="nearest"), _conv3x3(in_ch, out_ch, batchnorm)
            )
        else:
            raise ValueError(f"upsample must be 'transpose' or 'nearest', not {upsample!r}")
        self.act = nn.ReLU()

    def forward(self, x: Tensor) -> Tensor:
        return self.act(self.up(x))


class UNet(nn.Module):
    """Two-level U-Net: widths ``width``, ``2*width``, ``4*width`` (8/16/32 by default)."""

    def __init__(
        self, width: int = 8, batchnorm: bool = False, upsample: str = "transpose"
    ) -> None:
        super().__init__()
        w1, w2, w3 = width, 2 * width, 4 * width
        self.enc1 = ConvBlock(1, w1, batchnorm)
        self.pool1 = nn.AvgPool2d(2)
        self.enc2 = ConvBlock(w1, w2, batchnorm)
        self.pool2 = nn.AvgPool2d(2)
        self.bottom = ConvBlock(w2, w3, batchnorm)
        self.up2 = UpBlock(w3, w2, upsample, batchnorm)
        self.dec2 = ConvBlock(2 * w2, w2, batchnorm)
        self.up1 = UpBlock(w2, w1, upsample, batchnorm)
        self.dec1 = ConvBlock(2 * w1, w1, batchnorm)
        self.head = nn.Conv2d(w1, 1, kernel_size=1)
        self.prob = nn.Sigmoid()
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
                # He init keeps activation variance through the ReLU stack (the default
                # init shrinks it layer by layer, which slows the start of training).
                nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
                nn.init.zeros_(m.bias)

    def logits(self, image: Tensor) -> Tensor:
        """Pre-sigmoid output (for a numerically stable training loss)."""
        e1 = self.enc1(image)
        e2 = self.enc2(self.pool1(e1))
        b = self.bottom(self.pool2(e2))
        d2 = self.dec2(torch.cat([self.up2(b), e2], dim=1))
        d1 = self.dec1(torch.cat([self.up1(d2), e1], dim=1))
        return self.head(d1)

    def forward(self, image: Tensor) -> Tensor:
        """Probability of cell interior per pixel, shape (N, 1, H, W); H, W divisible by 4."""
        return self.prob(self.logits(image))


def parameter_count(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
