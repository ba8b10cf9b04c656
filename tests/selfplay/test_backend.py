"""Shards of fixed seeds and the local backend: the same shard gives the same games
however the iteration's shards are played; stream shards carry their unfinished games
over between iterations, reproducibly and across a resume."""

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
    stream_seed,
)
from razzle.selfplay.games import SelfPlayConfig, play_games
from razzle.search.streams import game_seeds

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


def stream_games(outputs, sessions: dict[int, dict], seed: int = 0) -> dict[tuple[int, int], list[str]]:
    """(shard, game number) -> actions of every game returned, checked to be each game of
    the shards' streams begun before the `sessions` checkpoints, but those in flight, once."""
    number_of = {}
    for index, saved in sessions.items():
        assert saved["seed"] == stream_seed(seed, index)
        seeds = game_seeds(saved["seed"], torch.arange(saved["next_game"])).tolist()
        number_of.update({str(value): (index, n) for n, value in enumerate(seeds)})
    games = {}
    for output in outputs:
        for record in output.records:
            game = number_of[record.headers["Seed"]]
            assert game not in games, f"game {game} returned twice"
            games[game] = record.actions
    expected = {(i, n) for i, saved in sessions.items() for n in range(saved["next_game"]) if n not in saved["restart"]}
    assert set(games) == expected, "a game was lost"
    return games


def test_stream_shards_return_finished_games_and_carry_the_others_over(network):
    torch.manual_seed(1)
    other = RazzleNet(channels=8, blocks=1)
    backend = LocalBackend(SEARCH, GAMES, RULES, progress=False)
    played = []
    for iteration, net in enumerate([network, other, network]):
        shards = plan_shards(GAMES.games, 2, seed=0, iteration=iteration, stream=True)
        assert [s.seed for s in shards] == [stream_seed(0, 0), stream_seed(0, 1)]
        played.append(backend.play(net, iteration, shards))
    for iteration, part in enumerate(played):
        merged = merge_played([part])
        # Statistics of the finished games alone: the games asked for, each over, all their samples.
        assert len(merged.records) == len(merged.summaries) == GAMES.games
        assert all(record.position().is_terminal for record in merged.records)
        assert len(merged.samples) == sum(len(record.actions) for record in merged.records)
        lengths = [summary.length for summary in merged.summaries]
        assert merged.stats["game_length_mean"] == pytest.approx(sum(lengths) / len(lengths))
        assert {r.headers["Iteration"] for r in merged.records} == {str(iteration)}
        assert set(merged.searched_by.tolist()) <= set(range(iteration + 1))
        assert sorted(part.sessions) == [0, 1] and all(saved["restart"] for saved in part.sessions.values())
    models = {r.headers["Models"] for part in played[1:] for o in part.outputs.values() for r in o.records}
    assert {"0-1", "1-2"} & models, "a game begun by one iteration's network finished with the next one's"
    stream_games([o for part in played for o in part.outputs.values()], played[-1].sessions)


def test_carried_over_games_are_the_same_after_a_resume(network):
    def iterations(backend, numbers):
        return [backend.play(network, i, plan_shards(GAMES.games, 2, 0, i, stream=True)) for i in numbers]

    straight = iterations(LocalBackend(SEARCH, GAMES, RULES, progress=False), range(3))
    before = iterations(LocalBackend(SEARCH, GAMES, RULES, progress=False), [0])
    resumed = LocalBackend(SEARCH, GAMES, RULES, progress=False, sessions=before[0].sessions)
    after = iterations(resumed, [1, 2])
    assert same_samples(before[0].outputs[0].samples, straight[0].outputs[0].samples)
    games = stream_games([o for part in before + after for o in part.outputs.values()], after[-1].sessions)
    expected = stream_games([o for part in straight for o in part.outputs.values()], straight[-1].sessions)
    # The games in flight at the resume started again from their first move with the same
    # network: every game is move for move the uninterrupted run's.
    shared = set(games) & set(expected)
    assert len(shared) >= 2 * GAMES.games and all(games[game] == expected[game] for game in shared)


def test_a_saved_session_of_another_seed_stream_is_refused(network):
    saved = {0: {"seed": 1, "next_game": 2, "restart": []}}
    backend = LocalBackend(SEARCH, GAMES, RULES, progress=False, sessions=saved)
    with pytest.raises(SelfPlayError, match="the saved session of shard 0 plays the seed stream 1"):
        backend.play(network, 0, plan_shards(GAMES.games, 1, 0, 0, stream=True))


@pytest.mark.parametrize(
    ("settings", "problem"),
    [
        ({"backend": "spark"}, "selfplay.backend must be one of local, ray"),
        ({"actors": 0}, "selfplay.actors must be a positive integer"),
        ({"shards": 0}, "selfplay.shards must be a positive integer or null"),
        ({"mode": "later"}, "selfplay.mode must be one of sync, async"),
        ({"max_staleness": -1}, "selfplay.max_staleness must be an integer >= 0"),
        ({"mode": "async"}, "selfplay.mode=async needs selfplay.backend=ray"),
        ({"carry_over": "yes"}, "selfplay.carry_over must be true or false"),
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


def test_only_sync_mode_carries_games_over():
    assert BackendConfig().keeps_sessions  # the default
    assert not BackendConfig(backend="ray", mode="async").keeps_sessions
    assert not BackendConfig(carry_over=False).keeps_sessions


def test_shards_default_to_one_per_actor_or_process():
    assert BackendConfig().shard_count() == 1
    assert BackendConfig(actors=3, backend="ray").shard_count() == 3
    assert BackendConfig().shard_count(processes=2) == 2
    assert BackendConfig(shards=4).shard_count(processes=2) == 4
