"""The three-headed residual network: policy logits, value and difficulty.

A tower of residual blocks (3x3 convolutions, batch norm, ReLU) over the 8x7 board feeds
three heads:

- policy: spatial, like the action encoding itself. A 3x3 convolution, then a 1x1
  convolution to 16 planes over the 56 squares (8 knight jumps, 8 pass directions) gives
  896 logits; the `end` logit comes from the same features, pooled over the board.
- value: tanh, in [-1, 1], the expected outcome for the side to move.
- difficulty: sigmoid, in [0, 1], how much search is expected to change the policy.

The last layers of the value and difficulty heads start from N(0, 0.01) weights and zero
bias, so tanh and sigmoid start unsaturated and their gradients flow from step one.
"""

from __future__ import annotations

import copy
from typing import NamedTuple

import torch
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

from razzle.game.actions import NUM_PLANES
from razzle.model.planes import BOARD_SHAPE, NUM_INPUT_PLANES

# Filters x residual blocks of the named sizes (the `model=` configs).
MODEL_SIZES = {"tiny": (32, 4), "small": (64, 6), "medium": (128, 10), "large": (256, 15)}

POLICY_CHANNELS = 32
SCALAR_HEAD_CHANNELS = 8
SCALAR_HEAD_HIDDEN = 128
LAST_LAYER_STD = 0.01


class NetworkOutput(NamedTuple):
    policy: torch.Tensor  # [B, 897] logits, canonical action ids
    value: torch.Tensor  # [B] in [-1, 1], side to move's view
    difficulty_logit: torch.Tensor  # [B]; the loss works on logits for numerical safety

    @property
    def difficulty(self) -> torch.Tensor:
        return torch.sigmoid(self.difficulty_logit)


def _conv_bn(in_channels: int, out_channels: int, kernel: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel, padding=kernel // 2, bias=False),
        nn.BatchNorm2d(out_channels),
    )


class ResidualBlock(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.first = _conv_bn(channels, channels, 3)
        self.second = _conv_bn(channels, channels, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(x + self.second(torch.relu(self.first(x))))


class PolicyHead(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.features = nn.Sequential(_conv_bn(channels, POLICY_CHANNELS, 3), nn.ReLU())
        self.planes = nn.Conv2d(POLICY_CHANNELS, NUM_PLANES, 1)
        self.end = nn.Linear(POLICY_CHANNELS, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = self.features(x)
        squares = self.planes(features).flatten(1)  # plane-major: plane * 56 + square
        return torch.cat([squares, self.end(features.mean((2, 3)))], 1)


class ScalarHead(nn.Module):
    """Board features -> one unbounded number per position (tanh/sigmoid come after)."""

    def __init__(self, channels: int):
        super().__init__()
        squares = BOARD_SHAPE[0] * BOARD_SHAPE[1]
        self.body = nn.Sequential(
            _conv_bn(channels, SCALAR_HEAD_CHANNELS, 1),
            nn.ReLU(),
            nn.Flatten(),
            nn.Linear(SCALAR_HEAD_CHANNELS * squares, SCALAR_HEAD_HIDDEN),
            nn.ReLU(),
        )
        self.out = nn.Linear(SCALAR_HEAD_HIDDEN, 1)
        nn.init.normal_(self.out.weight, std=LAST_LAYER_STD)
        nn.init.zeros_(self.out.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.body(x)).squeeze(1)


class RazzleNet(nn.Module):
    """`RazzleNet(channels, blocks)`; `RazzleNet.of_size("small")` for the named sizes."""

    def __init__(self, channels: int = 64, blocks: int = 6, in_planes: int = NUM_INPUT_PLANES):
        super().__init__()
        if channels < 1 or blocks < 0 or in_planes < 1:
            raise ValueError(
                f"RazzleNet needs channels >= 1, blocks >= 0 and in_planes >= 1, "
                f"got channels={channels}, blocks={blocks}, in_planes={in_planes}"
            )
        self.architecture = {"channels": channels, "blocks": blocks, "in_planes": in_planes}
        self.stem = nn.Sequential(_conv_bn(in_planes, channels, 3), nn.ReLU())
        self.tower = nn.Sequential(*(ResidualBlock(channels) for _ in range(blocks)))
        self.policy_head = PolicyHead(channels)
        self.value_head = ScalarHead(channels)
        self.difficulty_head = ScalarHead(channels)

    @classmethod
    def of_size(cls, size: str) -> RazzleNet:
        if size not in MODEL_SIZES:
            raise ValueError(f"unknown model size {size!r}; choose one of {', '.join(MODEL_SIZES)}")
        channels, blocks = MODEL_SIZES[size]
        return cls(channels, blocks)

    def forward(self, planes: torch.Tensor) -> NetworkOutput:
        trunk = self.tower(self.stem(planes))
        return NetworkOutput(
            policy=self.policy_head(trunk),
            value=torch.tanh(self.value_head(trunk)),
            difficulty_logit=self.difficulty_head(trunk),
        )

    def policy_and_value(self, planes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The forward's policy and value without the difficulty head, which a search
        never reads (about 5% of the tiny network's forward)."""
        trunk = self.tower(self.stem(planes))
        return self.policy_head(trunk), torch.tanh(self.value_head(trunk))


def inference_copy(network: RazzleNet) -> RazzleNet:
    """A copy of `network` for evaluation only: each batch norm folded into the convolution
    before it (`fuse_conv_bn_eval`), in channels_last memory. The same outputs up to float
    rounding and 1.25-1.45x the eager forward's speed on a 2-core CPU (docs/design.md)."""
    folded = copy.deepcopy(network).eval()
    for module in folded.modules():
        if isinstance(module, nn.Sequential) and len(module) == 2 and isinstance(module[1], nn.BatchNorm2d):
            module[0] = fuse_conv_bn_eval(module[0], module[1])
            module[1] = nn.Identity()
    return folded.to(memory_format=torch.channels_last)


def parameter_count(network: nn.Module) -> int:
    return sum(p.numel() for p in network.parameters())


def parameter_counts() -> dict[str, int]:
    """Parameters of every named size, e.g. for the README."""
    return {size: parameter_count(RazzleNet.of_size(size)) for size in MODEL_SIZES}
