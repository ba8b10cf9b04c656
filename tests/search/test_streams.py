"""Per-game random streams: root Dirichlet noise drawn from counters on the device."""

import pytest
import torch
from scipy import stats

from razzle.search.streams import dirichlet_noise

GAMES = 20_000


def _legal(games: int, first: int, count: int) -> torch.Tensor:
    legal = torch.zeros(games, 49, dtype=torch.bool)
    legal[:, first : first + count] = True
    return legal


@pytest.mark.parametrize("alpha, count", [(0.3, 2), (0.3, 20), (2.0, 5)])
def test_root_noise_has_the_dirichlet_marginals(alpha, count):
    """A Dirichlet(alpha) component over `count` slots is Beta(alpha, (count - 1) alpha):
    its mean 1 / count, and no distance from that law that 20,000 draws would show
    (Kolmogorov-Smirnov p above 0.01; the seeds are fixed, so the test is too)."""
    noise = dirichlet_noise(torch.arange(GAMES) * 7_919, _legal(GAMES, 3, count), alpha)
    component = noise[:, 4].double().numpy()
    assert abs(component.mean() - 1 / count) < 0.05 / count
    assert stats.kstest(component, stats.beta(alpha, (count - 1) * alpha).cdf).pvalue > 0.01


def test_root_noise_sums_to_one_over_the_legal_slots_and_is_zero_elsewhere():
    legal = _legal(6, 10, 7)
    legal[2] = False  # a finished game: no legal slot, no noise
    legal[4, 40:49] = True
    noise = dirichlet_noise(torch.arange(6), legal, 0.3)
    assert noise.dtype == torch.float32
    assert torch.equal(noise > 0, legal)
    sums = noise.sum(1)
    assert torch.allclose(sums[legal.any(1)], torch.ones(5))
    assert sums[2] == 0


def test_a_games_noise_follows_from_its_seed_alone():
    """The same seed and legal slots give the same noise whichever batch the game is in;
    another seed gives other noise."""
    legal = _legal(5, 0, 30)
    seeds = torch.tensor([11, 12, 13, 14, 15])
    batch = dirichlet_noise(seeds, legal, 0.3)
    for game in range(5):
        alone = dirichlet_noise(seeds[game : game + 1], legal[game : game + 1], 0.3)
        assert torch.equal(alone[0], batch[game])
    assert not torch.allclose(batch[0], batch[1])
