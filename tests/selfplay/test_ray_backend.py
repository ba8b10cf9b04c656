"""Self-play on a real local Ray cluster (two CPUs, one per test module): the actors
produce the local backend's samples (also with games carried over between iterations), a
killed actor loses and duplicates nothing, and async mode drops stale games and counts
them."""

import threading
import time

import pytest
import torch

ray = pytest.importorskip("ray")

from razzle.game import Rules  # noqa: E402
from razzle.model.network import RazzleNet  # noqa: E402
from razzle.search import SearchConfig  # noqa: E402
from razzle.selfplay.backend import (  # noqa: E402
    NEXT_STREAM_SHARD,
    BackendConfig,
    LocalBackend,
    RayConfig,
    SelfPlayError,
    merge_played,
    plan_shards,
)
from razzle.selfplay.games import SelfPlayConfig  # noqa: E402
from razzle.selfplay.ray_backend import RayBackend  # noqa: E402
from tests.selfplay.test_backend import stream_games  # noqa: E402

RULES = Rules(max_turns=10)
SEARCH = SearchConfig(simulations=3)
GAMES = SelfPlayConfig(games=4, parallel=2, temperature_turns=2)
CPU_ACTORS = RayConfig(num_cpus_per_actor=1)
WAIT_SECONDS = 120  # a bound on waiting for an actor, never an assertion


@pytest.fixture(scope="module", autouse=True)
def cluster():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


@pytest.fixture(autouse=True)
def actor_threads():
    """The local backend computes with an actor's thread count: oneDNN's convolutions may
    round the last bits differently with another, and the games compared must be equal."""
    threads = torch.get_num_threads()
    torch.set_num_threads(CPU_ACTORS.num_cpus_per_actor)
    yield
    torch.set_num_threads(threads)


def network(seed: int) -> RazzleNet:
    torch.manual_seed(seed)
    return RazzleNet(channels=8, blocks=1)


def same_samples(a, b) -> bool:
    return all(torch.equal(getattr(a, name), getattr(b, name)) for name in vars(a))


def actions(output) -> list[list[str]]:
    return [record.actions for record in output.records]


def backend(games=GAMES, start_shard=0, **settings) -> RayBackend:
    config = BackendConfig(backend="ray", actors=2, ray=CPU_ACTORS, **settings)
    return RayBackend(config, SEARCH, games, RULES, seed=0, start_shard=start_shard)


def until(condition, what: str) -> None:
    deadline = time.monotonic() + WAIT_SECONDS
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(0.02)


def test_two_actors_play_the_local_backends_games():
    net = network(0)
    shards = plan_shards(GAMES.games, 2, seed=0, iteration=3)
    local = merge_played([LocalBackend(SEARCH, GAMES, RULES, progress=False).play(net, 3, shards)])
    actors = backend()
    try:
        finished = []
        remote = merge_played([actors.play(net, 3, shards, finished.append)])
        statuses = actors.actors()
    finally:
        actors.close()
    assert same_samples(remote.samples, local.samples)
    assert actions(remote) == actions(local)
    assert [r.headers for r in remote.records] == [r.headers for r in local.records]
    assert finished[-1] == GAMES.games
    assert sum(s.games for s in statuses) == GAMES.games and all(s.restarts == 0 for s in statuses)
    assert all(s.state == "idle" and s.node != "?" for s in statuses)
    assert remote.stats["selfplay_actor_restarts"] == 0.0


def test_an_actor_killed_mid_game_loses_and_duplicates_nothing():
    games = SelfPlayConfig(games=6, parallel=1, temperature_turns=2)  # three games in a row per shard
    net = network(1)
    shards = plan_shards(games.games, 2, seed=0, iteration=0)
    local = merge_played([LocalBackend(SEARCH, games, RULES, progress=False).play(net, 0, shards)])
    actors = backend(games)
    try:
        result = {}
        player = threading.Thread(target=lambda: result.update(played=actors.play(net, 0, shards)))
        player.start()
        until(lambda: actors.handle(0) is not None, "the actors to start")
        victim = actors.handle(0)
        until(lambda: ray.get(victim.games_finished.remote()) >= 1, "actor 0's first game")
        ray.kill(victim)  # mid-shard: its other games are unfinished
        player.join(WAIT_SECONDS)
        played = result["played"]
        statuses = actors.actors()
    finally:
        actors.close()
    remote = merge_played([played])
    assert played.actor_restarts == 1 and statuses[0].restarts == 1 and statuses[1].restarts == 0
    assert [s.state for s in statuses] == ["idle", "idle"]  # the new actor answered its shard
    assert remote.stats["selfplay_actor_restarts"] == 1.0
    assert len(remote.records) == games.games
    assert same_samples(remote.samples, local.samples)  # the shard was played again from its seed
    assert actions(remote) == actions(local)


def test_stream_shards_stay_on_their_actors_and_play_the_local_backends_games():
    games = SelfPlayConfig(games=6, parallel=2, temperature_turns=2)  # shards of 3 games, 2 in flight
    nets = [network(0), network(1)]
    local_backend, actors = LocalBackend(SEARCH, games, RULES, progress=False), backend(games, carry_over=True)
    local, remote = [], []
    try:
        for iteration, net in enumerate(nets):
            shards = plan_shards(games.games, 2, seed=0, iteration=iteration, stream=True)
            local.append(local_backend.play(net, iteration, shards))
            remote.append(actors.play(net, iteration, shards))
        statuses = actors.actors()
    finally:
        actors.close()
    # Equal only if each shard's session lived on in one actor: a session rebuilt from its
    # checkpoint would start its games in flight again.
    for here, there in zip(local, remote):
        assert same_samples(merge_played([there]).samples, merge_played([here]).samples)
        assert actions(merge_played([there])) == actions(merge_played([here]))
        assert there.sessions == here.sessions
    assert [s.games for s in statuses] == [6, 6] and all(s.restarts == 0 for s in statuses)
    spanning = {r.headers["Models"] for r in merge_played([remote[1]]).records}
    assert "0-1" in spanning


def test_an_actor_killed_with_stream_shards_loses_and_duplicates_no_game():
    games = SelfPlayConfig(games=6, parallel=1, temperature_turns=2)  # three games in a row per shard
    net = network(1)
    actors = backend(games, carry_over=True)
    try:
        first = actors.play(net, 0, plan_shards(games.games, 2, 0, 0, stream=True))
        result = {}
        shards = plan_shards(games.games, 2, 0, 1, stream=True)
        player = threading.Thread(target=lambda: result.update(played=actors.play(net, 1, shards)))
        player.start()
        victim = actors.handle(0)
        until(lambda: ray.get(victim.games_finished.remote()) >= 1, "actor 0's first game of iteration 1")
        ray.kill(victim)  # mid-shard: it held shard 0's session
        player.join(WAIT_SECONDS)
        second = result["played"]
    finally:
        actors.close()
    assert second.actor_restarts == 1
    assert [len(merge_played([part]).records) for part in (first, second)] == [6, 6]
    # Shard 0 continued from iteration 0's checkpoint on the new actor: every game of both
    # streams returned once, only the ones in flight now missing.
    stream_games([o for part in (first, second) for o in part.outputs.values()], second.sessions)


def test_async_mode_drops_stale_games_and_counts_them():
    actors = backend(mode="async", max_staleness=0)
    shards = plan_shards(GAMES.games, 2, seed=0, iteration=0)
    try:
        first = actors.play(network(0), 0, shards)
        # While "the trainer trains", the actors play on with iteration 0's network.
        until(lambda: actors.buffered() >= 1, "a shard played during training")
        second = actors.play(network(1), 1, plan_shards(GAMES.games, 2, seed=0, iteration=1))
    finally:
        actors.close()
    assert first.stale_games_dropped == 0
    assert {r.headers["Models"] for o in first.outputs.values() for r in o.records} == {"0"}
    # Every game taken for iteration 1 was played by iteration 1's network; the older ones
    # (at least the buffered shard) were dropped and counted, in whole shards.
    kept = merge_played([second])
    assert {r.headers["Models"] for r in kept.records} == {"1"}
    assert {r.headers["Iteration"] for r in kept.records} == {"1"}
    assert len(kept.records) == GAMES.games
    assert second.stale_games_dropped >= 2 and second.stale_games_dropped % 2 == 0
    assert kept.stats["selfplay_stale_games_dropped"] == second.stale_games_dropped
    # Dropping made iteration 1 take shards numbered past its own (4 and on): a resumed
    # run's stream starts after them, so no stored game is played again.
    assert second.next_stream_shard > 4 and kept.stats[NEXT_STREAM_SHARD] == second.next_stream_shard
    resumed = backend(mode="async", max_staleness=0, start_shard=second.next_stream_shard)
    try:
        third = resumed.play(network(2), 2, plan_shards(GAMES.games, 2, seed=0, iteration=2))
    finally:
        resumed.close()
    stored = {r.headers["Seed"] for part in (first, second) for r in merge_played([part]).records}
    assert stored.isdisjoint(r.headers["Seed"] for r in merge_played([third]).records)


def test_gpu_actors_on_a_cluster_without_gpus_are_refused_by_name():
    config = BackendConfig(backend="ray", actors=3, ray=RayConfig(num_gpus_per_actor=0.33))
    with pytest.raises(SelfPlayError, match=r"ray.num_gpus_per_actor=0.33 but the Ray cluster has no GPU"):
        RayBackend(config, SEARCH, GAMES, RULES, seed=0)
