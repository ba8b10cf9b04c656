"""The composite AlphaZero loss; every weight is a config value under `loss`.

    loss_total = policy     * CE(pi_search, softmax(logits))          policy_loss
               + value      * mean((v - t)^2)                         value_loss
               + quartic    * mean((v - t)^4)                         value_loss_quartic
               + difficulty * BCE(d, min(1, KL(pi_search || p_prior) / 2))   difficulty_loss
               + lambda     * mean(policy mass on illegal actions)    illegal_penalty

The value target t is the game outcome z (`value_target="outcome"`, AlphaZero's), or with
`value_target="mix"` the blend t = (1 - lambda) z + lambda q of z and the search's root
value q, lambda = `value_target_mix`; lambda 0.5 is the "soft-Z" of Willemsen, Baier and
Kaisers (2021), which learned faster and stronger than z alone on Connect-Four and
Breakthrough: q is far less noisy than one game's result. Only training's target moves:
the metrics that judge the value (calibration, skill) compare it with z.

The quartic term punishes large value errors far more than small ones (an error of 0.1
costs 0.0001, one of 2 costs 16), so `quartic > 0` pushes v away from confidently
wrong calls. The illegal term's weight lambda is a Lagrange multiplier: fixed at
`illegal`, or with `illegal_mode="adaptive"` raised and lowered by dual ascent,
``lambda <- max(0, lambda + illegal_step * (illegal_mass - illegal_target))``, so that the
illegal mass is held under the target without hand-tuning the weight.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from razzle.model.network import NetworkOutput
from razzle.model.samples import Samples

ILLEGAL_MODES = ("fixed", "adaptive")
VALUE_TARGETS = ("outcome", "mix")


class CompositeLoss(nn.Module):
    """`loss(output, batch)` -> dict of the total and every unweighted term, keyed by the
    canonical metric names. The multiplier is a buffer, so checkpoints resume it."""

    def __init__(
        self,
        policy: float = 1.0,
        value: float = 1.0,
        quartic: float = 0.0,
        difficulty: float = 0.5,
        illegal: float = 1.0,
        illegal_mode: str = "fixed",
        illegal_target: float = 0.01,
        illegal_step: float = 0.1,
        value_target: str = "outcome",
        value_target_mix: float = 0.5,
    ):
        super().__init__()
        weights = {"policy": policy, "value": value, "quartic": quartic, "difficulty": difficulty, "illegal": illegal}
        for name, weight in weights.items():
            if not (isinstance(weight, (int, float)) and math.isfinite(weight) and weight >= 0):
                raise ValueError(f"loss.{name} must be a finite number >= 0, got {weight!r}")
        if illegal_mode not in ILLEGAL_MODES:
            raise ValueError(f"loss.illegal_mode must be one of {', '.join(ILLEGAL_MODES)}, got {illegal_mode!r}")
        if not 0 < illegal_target < 1:
            raise ValueError(f"loss.illegal_target must be in (0, 1), got {illegal_target!r}")
        if not illegal_step > 0:
            raise ValueError(f"loss.illegal_step must be > 0, got {illegal_step!r}")
        if value_target not in VALUE_TARGETS:
            raise ValueError(f"loss.value_target must be one of {', '.join(VALUE_TARGETS)}, got {value_target!r}")
        mix_is_number = isinstance(value_target_mix, (int, float)) and not isinstance(value_target_mix, bool)
        if not (mix_is_number and 0 <= value_target_mix <= 1):
            raise ValueError(f"loss.value_target_mix must be a number in [0, 1], got {value_target_mix!r}")
        self.weights = {name: float(w) for name, w in weights.items() if name != "illegal"}
        self.illegal_mode = illegal_mode
        self.illegal_target = illegal_target
        self.illegal_step = illegal_step
        self.value_target = value_target
        self.value_target_mix = float(value_target_mix)
        self.register_buffer("illegal_multiplier", torch.tensor(float(illegal)))

    @property
    def adaptive(self) -> bool:
        return self.illegal_mode == "adaptive"

    @property
    def uses_search_value(self) -> bool:
        """Whether the value target reads the samples' search values."""
        return self.value_target == "mix"

    def value_targets(self, batch: Samples) -> torch.Tensor:
        """[B] what the value head is trained towards (see the module docstring)."""
        if not self.uses_search_value:
            return batch.value
        return torch.lerp(batch.value, batch.search_value, self.value_target_mix)

    def forward(self, output: NetworkOutput, batch: Samples) -> dict[str, torch.Tensor]:
        log_probs = F.log_softmax(output.policy.float(), 1)
        error = output.value.float() - self.value_targets(batch)
        terms = {
            "policy_loss": -(batch.policy * log_probs).sum(1).mean(),
            "value_loss": error.square().mean(),
            "value_loss_quartic": error.pow(4).mean(),
            "difficulty_loss": F.binary_cross_entropy_with_logits(output.difficulty_logit.float(), batch.difficulty),
            "illegal_penalty": (log_probs.exp() * ~batch.legal).sum(1).mean(),
        }
        w = self.weights
        terms["loss_total"] = (
            w["policy"] * terms["policy_loss"]
            + w["value"] * terms["value_loss"]
            + w["quartic"] * terms["value_loss_quartic"]
            + w["difficulty"] * terms["difficulty_loss"]
            + self.illegal_multiplier * terms["illegal_penalty"]
        )
        return terms

    def update_multiplier(self, illegal_mass: torch.Tensor) -> None:
        """One dual-ascent step from the batch's illegal mass (no-op in fixed mode).

        Rebinds the buffer instead of changing it in place: the current loss still needs
        the old value for its backward pass.
        """
        if self.adaptive:
            step = self.illegal_step * (illegal_mass.detach() - self.illegal_target)
            self.illegal_multiplier = (self.illegal_multiplier + step).clamp(min=0)
