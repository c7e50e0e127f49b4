"""Small PyTorch U-Nets exported to ONNX, covering what real exports contain.

Each `UNetSpec` switches on features: BatchNorm (kept as ONNX nodes: exported with
`do_constant_folding=False` and `TrainingMode.PRESERVE` in eval mode), downsampling by
average pooling or a strided convolution, upsampling by nearest Resize (scale factor or
target size), bilinear `nn.Upsample` (align_corners=False) or a transposed convolution
with kernel 2 or 4, residual additions, dilated
convolutions, sigmoid, softmax or raw-logit heads, and the opset.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F


@dataclass(frozen=True)
class UNetSpec:
    name: str
    opset: int
    in_channels: int = 1
    classes: int = 1
    size: int = 16
    head: str = "sigmoid"  # sigmoid | softmax | logits (raw scores, no activation)
    down: str = "avgpool"  # avgpool | strided
    up: str = "resize"  # resize | resize_size | bilinear | convT2 | convT4
    residual: bool = False
    dilated: bool = False
    dynamic_batch: bool = False
    width: int = 4


class Block(nn.Module):
    """conv-BN-ReLU twice; optionally dilated, optionally with a residual connection."""

    def __init__(self, cin: int, cout: int, spec: UNetSpec) -> None:
        super().__init__()
        d = 2 if spec.dilated else 1
        self.c1 = nn.Conv2d(cin, cout, 3, padding=d, dilation=d)
        self.b1 = nn.BatchNorm2d(cout)
        self.c2 = nn.Conv2d(cout, cout, 3, padding=1)
        self.b2 = nn.BatchNorm2d(cout)
        self.skip = nn.Conv2d(cin, cout, 1) if spec.residual else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.b2(self.c2(F.relu(self.b1(self.c1(x)))))
        if self.skip is not None:
            y = y + self.skip(x)
        return F.relu(y)


class Up(nn.Module):
    def __init__(self, cin: int, cout: int, spec: UNetSpec) -> None:
        super().__init__()
        self.mode = spec.up
        if spec.up == "convT2":
            self.up = nn.ConvTranspose2d(cin, cout, 2, stride=2)
        elif spec.up == "convT4":
            self.up = nn.ConvTranspose2d(cin, cout, 4, stride=2, padding=1)
        else:
            self.up = nn.Conv2d(cin, cout, 1)
        self.bilinear = nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.mode == "resize":
            x = F.interpolate(x, scale_factor=2, mode="nearest")
        elif self.mode == "resize_size":
            x = F.interpolate(x, size=(x.shape[2] * 2, x.shape[3] * 2), mode="nearest")
        elif self.mode == "bilinear":
            x = self.bilinear(x)
        return self.up(x)


class Down(nn.Module):
    def __init__(self, channels: int, spec: UNetSpec) -> None:
        super().__init__()
        self.conv = (nn.Conv2d(channels, channels, 3, stride=2, padding=1)
                     if spec.down == "strided" else None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.avg_pool2d(x, 2) if self.conv is None else F.relu(self.conv(x))


class TinyUNet(nn.Module):
    """Two levels down, two up, skip connections by concatenation."""

    def __init__(self, spec: UNetSpec) -> None:
        super().__init__()
        w = spec.width
        self.head_kind = spec.head
        self.enc1, self.down1 = Block(spec.in_channels, w, spec), Down(w, spec)
        self.enc2, self.down2 = Block(w, 2 * w, spec), Down(2 * w, spec)
        self.mid = Block(2 * w, 4 * w, spec)
        self.up2, self.dec2 = Up(4 * w, 2 * w, spec), Block(4 * w, 2 * w, spec)
        self.up1, self.dec1 = Up(2 * w, w, spec), Block(2 * w, w, spec)
        self.head = nn.Conv2d(w, spec.classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        e1 = self.enc1(x)
        e2 = self.enc2(self.down1(e1))
        m = self.mid(self.down2(e2))
        d2 = self.dec2(torch.cat([self.up2(m), e2], dim=1))
        d1 = self.dec1(torch.cat([self.up1(d2), e1], dim=1))
        y = self.head(d1)
        if self.head_kind == "logits":
            return y
        return torch.sigmoid(y) if self.head_kind == "sigmoid" else torch.softmax(y, dim=1)


def randomize_batchnorm(model: nn.Module, seed: int) -> None:
    """Give every BatchNorm non-trivial statistics, as a trained network has."""
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            c = m.num_features
            m.running_mean.copy_(torch.randn(c, generator=g) * 0.3)
            m.running_var.copy_(torch.rand(c, generator=g) + 0.5)
            m.weight.data.copy_(torch.rand(c, generator=g) + 0.5)
            m.bias.data.copy_(torch.randn(c, generator=g) * 0.2)


def export_unet(spec: UNetSpec, path: Path, seed: int = 0) -> Path:
    torch.manual_seed(seed)
    model = TinyUNet(spec)
    randomize_batchnorm(model, seed)
    model.eval()
    x = torch.rand(1, spec.in_channels, spec.size, spec.size)
    dynamic = {"image": {0: "batch"}, "prob": {0: "batch"}} if spec.dynamic_batch else None
    torch.onnx.export(model, (x,), str(path), opset_version=spec.opset, dynamo=False,
                      do_constant_folding=False, training=torch.onnx.TrainingMode.PRESERVE,
                      input_names=["image"], output_names=["prob"], dynamic_axes=dynamic)
    return path


SPECS = [
    UNetSpec("bn-resize-sigmoid-opset11", opset=11),
    UNetSpec("rgb-strided-convT2-softmax2-residual-opset13", opset=13, in_channels=3,
             classes=2, size=24, head="softmax", down="strided", up="convT2", residual=True,
             dynamic_batch=True),
    UNetSpec("rgb-dilated-convT4-softmax3-residual-opset17", opset=17, in_channels=3,
             classes=3, size=32, head="softmax", down="strided", up="convT4", residual=True,
             dilated=True),
    UNetSpec("softmax3-resize-dilated-opset11", opset=11, classes=3, head="softmax",
             dilated=True, residual=True),
    UNetSpec("resize-size-sigmoid-opset17", opset=17, up="resize_size", size=20),
    UNetSpec("bilinear-logits-strided-opset17", opset=17, up="bilinear", head="logits",
             down="strided", size=20),
]
