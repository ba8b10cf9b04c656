"""The rules engine under torch.compile: one graph, the same results as eager."""

import pytest
import torch

from razzle.game.bench import midgame_positions
from razzle.game.engine import random_actions, step

FIELDS = ("squares", "eligible", "carrier", "to_move", "mid_chain", "turn", "done", "winner", "history", "legal", "actions")


@pytest.mark.slow
def test_step_compiles_to_one_graph_that_matches_eager():
    """fullgraph=True fails on any graph break; about a minute of compilation on a CPU."""
    compiled = torch.compile(lambda state, actions: step(state, actions), fullgraph=True, dynamic=False)
    state = midgame_positions(32, torch.device("cpu"), seed=4)
    generator = torch.Generator().manual_seed(4)
    for _ in range(3):
        actions = random_actions(state, generator)
        eager, traced = step(state, actions), compiled(state, actions)
        for field in FIELDS:
            assert torch.equal(getattr(eager, field), getattr(traced, field)), field
        state = eager
