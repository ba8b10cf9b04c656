"""Shards of fixed seeds and the local backend: the same shard gives the same games
however the iteration's shards are played."""

import pytest
import torch

from razzle.game import Rules
from razzle.model.network import RazzleNet
from razzle.model.evaluator import NetworkEvaluator
from razzle.search import SearchConfig
from razzle.selfplay.backend import (
    BackendConfig,
    LocalBackend,
    RayConfig,
    SelfPlayError,
    merge_played,
    plan_shards,
    play_shard,
    shard_seed,
)
from razzle.selfplay.games import SelfPlayConfig, play_games

RULES = Rules(max_turns=8)
SEARCH = SearchConfig(simulations=2)
GAMES = SelfPlayConfig(games=5, parallel=4, temperature_turns=2)


def same_samples(a, b) -> bool:
    return all(torch.equal(getattr(a, name), getattr(b, name)) for name in vars(a))


@pytest.fixture(scope="module")
def network():
    torch.manual_seed(0)
    return RazzleNet(channels=8, blocks=1)


def test_shards_split_the_games_evenly_with_distinct_seeds():
    shards = plan_shards(games=5, shards=2, seed=3, iteration=7)
    assert [(s.iteration, s.index, s.games) for s in shards] == [(7, 0, 3), (7, 1, 2)]
    assert [s.seed for s in shards] == [shard_seed(3, 7, 0), shard_seed(3, 7, 1)]
    assert len({shard_seed(seed, it, k) for seed in range(3) for it in range(50) for k in range(4)}) == 600
    with pytest.raises(SelfPlayError, match=r"selfplay.games \(1\) must be at least the number of shards \(2\)"):
        plan_shards(games=1, shards=2, seed=0, iteration=0)


def test_one_shard_is_the_whole_batch_as_play_games_plays_it(network):
    (shard,) = plan_shards(GAMES.games, 1, seed=0, iteration=2)
    played = LocalBackend(SEARCH, GAMES, RULES, progress=False).play(network, 2, [shard])
    direct = play_games(NetworkEvaluator(network), SEARCH, GAMES, RULES, seed=shard.seed, progress=False)
    assert same_samples(played.outputs[0].samples, direct.samples)
    assert [r.actions for r in played.outputs[0].records] == [r.actions for r in direct.records]
    headers = played.outputs[0].records[0].headers
    assert headers == {"Iteration": "2", "Game": "1", "Seed": headers["Seed"], "Models": "2"}
    assert played.outputs[0].searched_by.unique().tolist() == [2]


def test_a_shard_plays_the_same_games_alone_or_among_others(network):
    shards = plan_shards(GAMES.games, 2, seed=0, iteration=0)
    finished = []
    both = LocalBackend(SEARCH, GAMES, RULES, progress=False).play(network, 0, shards, finished.append)
    alone = play_shard(NetworkEvaluator(network), SEARCH, GAMES, RULES, shards[1], model_iteration=0)
    assert same_samples(both.outputs[1].samples, alone.samples)
    assert finished == [1, 2, 3, 4, 5]  # counted over the shards
    merged = merge_played([both])
    assert len(merged.records) == 5 and merged.stats["selfplay_actor_restarts"] == 0.0
    assert len(merged.samples) == len(both.outputs[0].samples) + len(both.outputs[1].samples)


@pytest.mark.parametrize(
    ("settings", "problem"),
    [
        ({"backend": "spark"}, "selfplay.backend must be one of local, ray"),
        ({"actors": 0}, "selfplay.actors must be a positive integer"),
        ({"shards": 0}, "selfplay.shards must be a positive integer or null"),
        ({"mode": "later"}, "selfplay.mode must be one of sync, async"),
        ({"max_staleness": -1}, "selfplay.max_staleness must be an integer >= 0"),
        ({"mode": "async"}, "selfplay.mode=async needs selfplay.backend=ray"),
    ],
)
def test_bad_settings_are_refused_by_name(settings, problem):
    with pytest.raises(SelfPlayError, match=problem):
        BackendConfig(**settings)


def test_bad_ray_settings_are_refused_by_name():
    with pytest.raises(SelfPlayError, match="ray.num_gpus_per_actor must be a number >= 0"):
        RayConfig(num_gpus_per_actor=-0.5)
    with pytest.raises(SelfPlayError, match="ray.address must be null, auto or a head address"):
        RayConfig(address="")


def test_shards_default_to_one_per_actor_or_process():
    assert BackendConfig().shard_count() == 1
    assert BackendConfig(actors=3, backend="ray").shard_count() == 3
    assert BackendConfig().shard_count(processes=2) == 2
    assert BackendConfig(shards=4).shard_count(processes=2) == 4
