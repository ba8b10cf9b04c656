"""What the search needs from a network: priors and values for a batch of positions.

`razzle.model.evaluator.NetworkEvaluator` is the real one; `UniformEvaluator` is the
"uniform-prior MCTS" baseline and the evaluator of the search tests.
"""

from __future__ import annotations

import time
from typing import Protocol

import torch

from razzle.game.actions import NUM_ACTIONS
from razzle.game.state import State


class Evaluator(Protocol):
    """`evaluator(state) -> (logits [B, 897], value [B])`.

    Logits are over ABSOLUTE action ids (any values at illegal actions; the search masks
    them). The value is in [-1, 1] from the side to move's view. Both come back on the
    state's device.

    The states the search passes for tree leaves carry a condensed repetition history:
    for a position at the start of a turn, its own key repeated as often as it has
    occurred at turn starts so far (itself included), so counting matches of
    `repetition_key(state)` in `state.history` is exact; mid-chain leaves get an empty
    one (all -1). Nothing else about that history (order, length) is meaningful.
    """

    def __call__(self, state: State) -> tuple[torch.Tensor, torch.Tensor]: ...


class UniformEvaluator:
    """Equal logits everywhere and value 0: search guided by the rules alone."""

    def __call__(self, state: State) -> tuple[torch.Tensor, torch.Tensor]:
        B = state.batch_size
        logits = torch.zeros(1, NUM_ACTIONS, device=state.device).expand(B, NUM_ACTIONS)
        return logits, torch.zeros(B, device=state.device)


class TimedEvaluator:
    """Wraps any evaluator and counts the positions it evaluates and the time spent in it,
    which separates the network's share of a search from the search's own overhead.
    It waits for the device after each call, so it is for measuring, not for self-play
    nor for simulations captured as CUDA graphs."""

    def __init__(self, evaluator: Evaluator):
        self.evaluator = evaluator
        self.positions = 0
        self.calls = 0
        self.seconds = 0.0

    def __call__(self, state: State) -> tuple[torch.Tensor, torch.Tensor]:
        started = time.perf_counter()
        logits, value = self.evaluator(state)
        if logits.device.type == "cuda":
            torch.cuda.synchronize(logits.device)
        self.seconds += time.perf_counter() - started
        self.positions += state.batch_size
        self.calls += 1
        return logits, value
