import pytest

from razzle.model.samples import Samples, random_play_samples


@pytest.fixture(scope="session")
def real_samples() -> Samples:
    """64 positions from random games, with their games' outcomes."""
    return random_play_samples(64, seed=0)
