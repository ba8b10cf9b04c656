"""Who plays an iteration's self-play games: this process, or actors on a Ray cluster.

An iteration's games are split into fixed shards. Shard k of iteration i holds
`share(games, shards, k)` games played in lockstep by `play_games` from the seed
`shard_seed(seed, i, k)`, so a shard's games and samples depend on (seed, iteration,
shard) and the network alone: the same shard gives the same samples whichever backend,
actor or process plays it, and a shard cut short by a dead actor is simply played again.
With one shard (the default for one process and one actor) the iteration is one batch,
exactly as `play_games` plays it.

The loop calls a backend's `play`; `LocalBackend` plays the shards here, one after the
other, and `razzle.selfplay.ray_backend.RayBackend` hands them to Ray actors.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Protocol

import torch

from razzle.game.rules import Rules
from razzle.model.evaluator import NetworkEvaluator
from razzle.search import SearchConfig
from razzle.search.evaluator import Evaluator
from razzle.selfplay.games import SelfPlayConfig, SelfPlayOutput, merge_outputs, output_statistics, play_games
from razzle.selfplay.status import ActorStatus

BACKENDS = ("local", "ray")
MODES = ("sync", "async")


class SelfPlayError(Exception):
    """Self-play settings or a cluster the backend cannot work with; the message says why."""


def _int_at_least(value, least: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= least


def _positive_int(value) -> bool:
    return _int_at_least(value, 1)


def _non_negative_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and 0 <= value < float("inf")


@dataclass(frozen=True)
class RayConfig:
    """address: None starts a local Ray cluster (of `num_cpus` CPUs, None: all of this
    machine's), "auto" joins the cluster this machine belongs to (`ray start`), or a head
    node's "host:port"; each actor reserves `num_cpus_per_actor` CPUs and
    `num_gpus_per_actor` GPUs (0.33: three actors share a GPU); an actor that dies is
    started again at most `max_restarts` times over the run."""

    address: str | None = None
    num_cpus: int | None = None
    num_cpus_per_actor: float = 1.0
    num_gpus_per_actor: float = 0.0
    max_restarts: int = 10

    def __post_init__(self) -> None:
        if self.address is not None and not (isinstance(self.address, str) and self.address.strip()):
            raise SelfPlayError(f"ray.address must be null, auto or a head address host:port, got {self.address!r}")
        if self.num_cpus is not None and not _positive_int(self.num_cpus):
            raise SelfPlayError(f"ray.num_cpus must be a positive integer or null (all CPUs), got {self.num_cpus!r}")
        for name in ("num_cpus_per_actor", "num_gpus_per_actor"):
            if not _non_negative_number(getattr(self, name)):
                raise SelfPlayError(f"ray.{name} must be a number >= 0, got {getattr(self, name)!r}")
        if not _int_at_least(self.max_restarts, 0):
            raise SelfPlayError(f"ray.max_restarts must be an integer >= 0, got {self.max_restarts!r}")


@dataclass(frozen=True)
class BackendConfig:
    """backend: "local" (this process) or "ray" (Ray actors); actors: Ray actors;
    shards: shards per iteration (None: one per actor, or per process under DDP, whichever
    is more); mode: "sync" (every iteration's games with its own network) or "async"
    (Ray actors keep playing with the newest network they have while the trainer trains,
    and games from a network more than `max_staleness` iterations old are dropped)."""

    backend: str = "local"
    actors: int = 1
    shards: int | None = None
    mode: str = "sync"
    max_staleness: int = 1
    ray: RayConfig = field(default_factory=RayConfig)

    def __post_init__(self) -> None:
        if self.backend not in BACKENDS:
            raise SelfPlayError(f"selfplay.backend must be one of {', '.join(BACKENDS)}, got {self.backend!r}")
        if self.mode not in MODES:
            raise SelfPlayError(f"selfplay.mode must be one of {', '.join(MODES)}, got {self.mode!r}")
        if not _positive_int(self.actors):
            raise SelfPlayError(f"selfplay.actors must be a positive integer, got {self.actors!r}")
        if self.shards is not None and not _positive_int(self.shards):
            raise SelfPlayError(f"selfplay.shards must be a positive integer or null, got {self.shards!r}")
        if not _int_at_least(self.max_staleness, 0):
            raise SelfPlayError(f"selfplay.max_staleness must be an integer >= 0, got {self.max_staleness!r}")
        if self.mode == "async" and self.backend != "ray":
            raise SelfPlayError(
                "selfplay.mode=async needs selfplay.backend=ray (actors that play while the trainer trains)"
            )

    def shard_count(self, processes: int = 1) -> int:
        return self.shards if self.shards is not None else max(self.actors, processes)


@dataclass(frozen=True)
class Shard:
    """`games` games of `iteration` played in lockstep from `seed`; `index` orders the
    shards of an iteration."""

    iteration: int
    index: int
    games: int
    seed: int


def shard_seed(seed: int, iteration: int, index: int) -> int:
    """A distinct seed per run seed, iteration and shard."""
    return seed * 100_003 + iteration + index * 1_000_000_007


def plan_shards(games: int, shards: int, seed: int, iteration: int) -> list[Shard]:
    """The iteration's games split as evenly as possible into `shards` shards."""
    if games < shards:
        raise SelfPlayError(f"selfplay.games ({games}) must be at least the number of shards ({shards})")
    return [
        Shard(iteration, index, games // shards + (index < games % shards), shard_seed(seed, iteration, index))
        for index in range(shards)
    ]


def play_shard(
    evaluator: Evaluator,
    search: SearchConfig,
    config: SelfPlayConfig,
    rules: Rules,
    shard: Shard,
    model_iteration: int,
    progress: bool = False,
    on_game: Callable[[int], None] | None = None,
) -> SelfPlayOutput:
    """The shard's games; each record is tagged with the iteration it belongs to and (as
    `Models`, like its samples) the iteration of the model that played it."""
    games = replace(config, games=shard.games, parallel=min(config.parallel, shard.games))
    headers = {"Iteration": str(shard.iteration)}
    return play_games(
        evaluator,
        search,
        games,
        rules,
        seed=shard.seed,
        progress=progress,
        headers=headers,
        on_game=on_game,
        model=model_iteration,
    )


@dataclass
class Played:
    """An iteration's games as a backend returns them: outputs by shard index, the wall
    time it took, the games dropped as stale (async mode) and the actors' restarts."""

    outputs: dict[int, SelfPlayOutput]
    seconds: float
    stale_games_dropped: int = 0
    actor_restarts: int = 0


def merge_played(played: Sequence[Played]) -> SelfPlayOutput:
    """One output of every shard in shard order, with the distributed statistics; the
    wall time is the longest of the parts (they ran at the same time)."""
    outputs = {index: output for part in played for index, output in part.outputs.items()}
    merged = merge_outputs([outputs[index] for index in sorted(outputs)])
    merged.seconds = max(part.seconds for part in played)
    merged.stats = {
        **output_statistics(merged),
        "selfplay_stale_games_dropped": float(sum(part.stale_games_dropped for part in played)),
        "selfplay_actor_restarts": float(sum(part.actor_restarts for part in played)),
    }
    return merged


class SelfPlayBackend(Protocol):
    """Plays shards of an iteration with the given network; `actors()` says what its
    actors are doing (empty for a backend without actors)."""

    def play(
        self, network: torch.nn.Module, iteration: int, shards: Sequence[Shard], on_game: Callable[[int], None] | None
    ) -> Played: ...

    def actors(self) -> list[ActorStatus]: ...

    def close(self) -> None: ...


class LocalBackend:
    """Plays the shards in this process, one after the other, on `device`."""

    def __init__(
        self,
        search: SearchConfig,
        games: SelfPlayConfig,
        rules: Rules,
        device: torch.device | str = "cpu",
        progress: bool = True,
    ):
        self.search, self.games, self.rules = search, games, rules
        self.device, self.progress = torch.device(device), progress

    def play(
        self,
        network: torch.nn.Module,
        iteration: int,
        shards: Sequence[Shard],
        on_game: Callable[[int], None] | None = None,
    ) -> Played:
        started = time.perf_counter()
        evaluator = NetworkEvaluator(copy.deepcopy(network), self.device)
        outputs: dict[int, SelfPlayOutput] = {}
        done = 0
        for shard in shards:
            counted = None if on_game is None else (lambda finished, before=done: on_game(before + finished))
            outputs[shard.index] = play_shard(
                evaluator, self.search, self.games, self.rules, shard, iteration, self.progress, counted
            )
            done += shard.games
        return Played(outputs, time.perf_counter() - started)

    def actors(self) -> list[ActorStatus]:
        return []

    def close(self) -> None:
        pass


def make_backend(
    config: BackendConfig,
    search: SearchConfig,
    games: SelfPlayConfig,
    rules: Rules,
    seed: int,
    device: torch.device | str = "cpu",
    progress: bool = True,
    start_iteration: int = 0,
) -> SelfPlayBackend:
    """The backend the config names; Ray is imported only when asked for."""
    if config.backend == "local":
        return LocalBackend(search, games, rules, device, progress)
    try:
        from razzle.selfplay.ray_backend import RayBackend
    except ImportError as error:
        raise SelfPlayError(f"selfplay.backend=ray needs the ray package: pip install -e '.[ray]' ({error})") from error

    return RayBackend(config, search, games, rules, seed, start_iteration)
