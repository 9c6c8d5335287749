"""A small ResNet (BasicBlock, ResNet-18/34) with configurable width and input channels.

Used as the localization network of each GQ-STN stage and as MultiGrasp's feature extractor.
At width 64, 3 input channels and a 1000-class head it matches torchvision's resnet18/34 layout
(11,689,512 / 21,797,672 parameters); benchbot uses 1 channel (depth) and no head.
"""
from __future__ import annotations

import torch
from torch import nn

from benchbot.core.errors import BenchbotError, check_number, shown

DEPTHS = {18: (2, 2, 2, 2), 34: (3, 4, 6, 3)}


def check_backbone(depth: object, width: object, input_size: object) -> None:
    """ResNet depth 18/34, and a width and input side a CPU or GPU can hold (configs come from files)."""
    if not isinstance(depth, int) or isinstance(depth, bool) or depth not in DEPTHS:
        raise BenchbotError(f"backbone_depth = {shown(depth)} is not a known ResNet", f"use one of {sorted(DEPTHS)}")
    check_number("backbone_width", width, 1, 512, integer=True)
    check_number("input_size", input_size, 16, 1024, integer=True)


class BasicBlock(nn.Module):
    """Two 3×3 convs with batch norm and an identity (or 1×1 projection) shortcut."""

    def __init__(self, in_ch: int, out_ch: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_ch, out_ch, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_ch)
        self.conv2 = nn.Conv2d(out_ch, out_ch, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_ch)
        self.relu = nn.ReLU(inplace=True)
        self.downsample: nn.Module | None = None
        if stride != 1 or in_ch != out_ch:
            self.downsample = nn.Sequential(nn.Conv2d(in_ch, out_ch, 1, stride, bias=False),
                                            nn.BatchNorm2d(out_ch))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class ResNet(nn.Module):
    """ResNet-18/34 trunk. forward(x: B×C×H×W) → pooled features B×feature_dim (or logits with a head)."""

    def __init__(self, depth: int = 18, width: int = 64, in_channels: int = 1,
                 num_classes: int | None = None) -> None:
        super().__init__()
        if depth not in DEPTHS:
            raise ValueError(f"ResNet depth must be one of {sorted(DEPTHS)}, got {depth}")
        self.depth = depth
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, width, 7, 2, 3, bias=False), nn.BatchNorm2d(width),
            nn.ReLU(inplace=True), nn.MaxPool2d(3, 2, 1))
        stages: list[nn.Module] = []
        in_ch = width
        for i, n_blocks in enumerate(DEPTHS[depth]):
            out_ch = width * 2 ** i
            blocks = [BasicBlock(in_ch, out_ch, 1 if i == 0 else 2)]
            blocks += [BasicBlock(out_ch, out_ch) for _ in range(n_blocks - 1)]
            stages.append(nn.Sequential(*blocks))
            in_ch = out_ch
        self.stages = nn.Sequential(*stages)
        self.feature_dim = in_ch
        self.fc = nn.Linear(in_ch, num_classes) if num_classes else None
        self._init_weights()

    def _init_weights(self) -> None:
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        # zero the last BN of each block: every block starts as identity (stabler early training)
        for m in self.modules():
            if isinstance(m, BasicBlock):
                nn.init.zeros_(m.bn2.weight)

    def feature_map(self, x: torch.Tensor) -> torch.Tensor:
        """Last stage's feature map B×feature_dim×H/32×W/32."""
        return self.stages(self.stem(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f = self.feature_map(x).mean(dim=(2, 3))
        return self.fc(f) if self.fc is not None else f


def resnet(depth: int = 18, width: int = 64, in_channels: int = 1, num_classes: int | None = None) -> ResNet:
    return ResNet(depth, width, in_channels, num_classes)
