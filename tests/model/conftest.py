import pytest
import torch

from razzle.game.engine import initial_state, random_actions, step
from razzle.game.state import State
from razzle.model.samples import Samples, random_play_samples


def random_positions(count: int, seed: int, max_ply: int = 60) -> State:
    """Unfinished positions from random games, each stopped at its own random ply."""
    generator = torch.Generator().manual_seed(seed)
    state = initial_state(count)
    stop = torch.randint(0, max_ply, (count,), generator=generator)
    sampled = state
    for ply in range(max_ply):
        state = step(state, random_actions(state, generator))
        sampled = sampled.where((ply < stop) & ~state.done, state)
    return sampled


@pytest.fixture(scope="session")
def positions() -> State:
    state = random_positions(200, seed=7, max_ply=40)
    # The sample must cover what the encoding distinguishes.
    assert (state.to_move == 1).any() and state.mid_chain.any() and state.forced.any()
    return state


@pytest.fixture(scope="session")
def real_samples() -> Samples:
    """64 positions from random games, with their games' outcomes."""
    return random_play_samples(64, seed=0)
