"""Search settings from Hydra configs, and choosing actions from a search."""

from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate

from razzle.game.actions import END
from razzle.game.bench import midgame_positions
from razzle.search import MCTS, SearchConfig, UniformEvaluator, choose_actions
from razzle.search.mcts import SearchResult

CONF = Path(__file__).resolve().parents[2] / "conf"


@pytest.mark.parametrize("name, simulations", [("default", 64), ("reference", 800)])
def test_search_configs_instantiate(name, simulations):
    with initialize_config_dir(config_dir=str(CONF / "search"), version_base="1.3"):
        config = instantiate(compose(config_name=name))
    assert isinstance(config, SearchConfig)
    assert config.simulations == simulations
    assert config.dirichlet_alpha == 0.3 and config.dirichlet_epsilon == 0.25


@pytest.mark.parametrize(
    "field, value",
    [
        ("simulations", 0), ("simulations", 2.5), ("c_puct", -1.0), ("dirichlet_epsilon", 1.5), ("fpu_reduction", "x"),
        ("cuda_graphs", "yes"),
    ],
)
def test_bad_settings_are_refused_by_name(field, value):
    with pytest.raises(ValueError, match=f"search.{field}"):
        SearchConfig(**{field: value})


def fixed_result(visits: list[list[float]], done: list[bool] | None = None) -> SearchResult:
    """A search result with given root visit counts over the first slots."""
    B = len(visits)
    counts = torch.zeros(B, 49)
    counts[:, : len(visits[0])] = torch.tensor(visits)
    return SearchResult(
        actions=torch.arange(49).repeat(B, 1) * 3,
        legal=torch.ones(B, 49, dtype=torch.bool),
        visits=counts,
        q=torch.zeros(B, 49),
        prior=torch.full((B, 49), 1 / 49),
        root_value=torch.zeros(B),
        network_value=torch.zeros(B),
        pv=torch.full((B, 1), -1),
        done=torch.tensor(done or [False] * B),
    )


def test_temperature_zero_plays_the_most_visited_and_breaks_ties_at_random():
    result = fixed_result([[1, 9, 3], [5, 5, 0]], done=[False, False])
    seen = set()
    for seed in range(20):
        actions = choose_actions(result, 0.0, torch.Generator().manual_seed(seed))
        assert actions[0] == 3
        seen.add(int(actions[1]))
    assert seen == {0, 3}


def test_sampling_follows_visits_to_the_power_one_over_temperature():
    result = fixed_result([[10, 30, 60, 0]] * 4000)
    generator = torch.Generator().manual_seed(0)
    for temperature, expected in ((1.0, [0.1, 0.3, 0.6, 0.0]), (0.5, [1 / 46, 9 / 46, 36 / 46, 0.0])):
        slots = choose_actions(result, temperature, generator) // 3
        frequencies = torch.bincount(slots, minlength=4)[:4].float() / 4000
        assert torch.allclose(frequencies, torch.tensor(expected), atol=0.03)


def test_finished_games_get_end_and_bad_temperature_is_refused():
    result = fixed_result([[1, 2], [3, 1]], done=[True, False])
    assert choose_actions(result)[0] == END
    with pytest.raises(ValueError, match="temperature"):
        choose_actions(result, -1.0)


def test_chosen_actions_are_legal_in_real_positions():
    state = midgame_positions(16, torch.device("cpu"), seed=2)
    result = MCTS(UniformEvaluator(), SearchConfig(simulations=16)).search(state)
    for temperature in (0.0, 1.0):
        actions = choose_actions(result, temperature, torch.Generator().manual_seed(1))
        legal = [set(state.actions[b][state.legal[b]].tolist()) for b in range(16)]
        assert all(int(a) in options for a, options in zip(actions, legal))
