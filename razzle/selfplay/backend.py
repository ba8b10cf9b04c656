"""Who plays an iteration's self-play games: this process, or actors on a Ray cluster.

An iteration's games are split into fixed shards; shard k asks for `share(games, shards,
k)` finished games. With carry-over (`carry_over`, sync mode) shard k is a stream of games
that lasts the run: a `SelfPlaySession` seeded `stream_seed(seed, k)` keeps its batch full,
and the games unfinished at the end of an iteration go on in the next one with the new
network. Its `checkpoint()` travels with every shard's output, so a lost session (a dead
actor, a killed run) is rebuilt from the last one: its games in flight start again from
their first move, none is lost or counted twice. Without carry-over, shard k of iteration
i is one draining batch played by `play_games` from the seed `shard_seed(seed, i, k)`, and
a shard cut short by a dead actor is simply played again. Either way a shard's games and
samples depend on the seeds and the networks alone, not on the backend, actor or process
that plays it.

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
from razzle.selfplay.games import (
    SelfPlayConfig,
    SelfPlayOutput,
    SelfPlaySession,
    merge_outputs,
    output_statistics,
    play_games,
)
from razzle.selfplay.status import ActorStatus

BACKENDS = ("local", "ray")
NEXT_STREAM_SHARD = "selfplay_next_stream_shard"  # in an async run's replay stats: where a resume goes on
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
    carry_over: bool = True
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
        if not isinstance(self.carry_over, bool):
            raise SelfPlayError(f"selfplay.carry_over must be true or false, got {self.carry_over!r}")
        if self.mode == "async" and self.backend != "ray":
            raise SelfPlayError(
                "selfplay.mode=async needs selfplay.backend=ray (actors that play while the trainer trains)"
            )

    def shard_count(self, processes: int = 1) -> int:
        return self.shards if self.shards is not None else max(self.actors, processes)

    @property
    def keeps_sessions(self) -> bool:
        """Whether shards are streams whose games carry over between iterations."""
        return self.carry_over and self.mode == "sync"


@dataclass(frozen=True)
class Shard:
    """`games` finished games of `iteration` from the seed stream `seed`; `index` orders
    the shards of an iteration. stream: the shard's session goes on across iterations
    (its unfinished games carry over); else the shard is one batch that drains."""

    iteration: int
    index: int
    games: int
    seed: int
    stream: bool = False


def shard_seed(seed: int, iteration: int, index: int) -> int:
    """A distinct seed per run seed, iteration and shard."""
    return seed * 100_003 + iteration + index * 1_000_000_007


def stream_seed(seed: int, index: int) -> int:
    """The seed of shard `index`'s stream of games over a whole run (carry-over): one no
    draining shard of the run uses (it would be iteration -1's)."""
    return shard_seed(seed, -1, index)


def plan_shards(games: int, shards: int, seed: int, iteration: int, stream: bool = False) -> list[Shard]:
    """The iteration's games split as evenly as possible into `shards` shards; `stream`:
    shards that carry their unfinished games over, seeded per shard for the whole run."""
    if games < shards:
        raise SelfPlayError(f"selfplay.games ({games}) must be at least the number of shards ({shards})")
    return [
        Shard(
            iteration,
            index,
            games // shards + (index < games % shards),
            stream_seed(seed, index) if stream else shard_seed(seed, iteration, index),
            stream,
        )
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


class ShardPlayer:
    """Plays shards with whatever evaluator a call brings, keeping the session of every
    stream shard it has played (in memory, between calls); a stream shard it has no session
    for starts from `checkpoint` (the shard's last `SelfPlaySession.checkpoint()`, None: the
    stream's beginning)."""

    def __init__(self, search: SearchConfig, config: SelfPlayConfig, rules: Rules, device: torch.device | str = "cpu"):
        self.search, self.config, self.rules, self.device = search, config, rules, device
        self.sessions: dict[int, SelfPlaySession] = {}

    def play(
        self,
        evaluator: Evaluator,
        shard: Shard,
        model_iteration: int,
        checkpoint: dict | None = None,
        progress: bool = False,
        on_game: Callable[[int], None] | None = None,
    ) -> tuple[SelfPlayOutput, dict | None]:
        """The shard's games and, for a stream shard, its session's checkpoint after them."""
        if not shard.stream:
            output = play_shard(
                evaluator, self.search, self.config, self.rules, shard, model_iteration, progress, on_game
            )
            return output, None
        session = self.sessions.get(shard.index)
        if session is None:
            session = self.sessions[shard.index] = self._open(shard, checkpoint)
        headers = {"Iteration": str(shard.iteration)}
        output = session.play(
            evaluator, shard.games, model=model_iteration, progress=progress, headers=headers, on_game=on_game
        )
        return output, session.checkpoint()

    def _open(self, shard: Shard, checkpoint: dict | None) -> SelfPlaySession:
        saved = checkpoint or {"seed": shard.seed}
        if saved["seed"] != shard.seed:
            raise SelfPlayError(
                f"the saved session of shard {shard.index} plays the seed stream {saved['seed']}, this run's "
                f"shard {shard.index} plays {shard.seed}: resume with the run's seed and selfplay.shards"
            )
        config = replace(self.config, parallel=min(self.config.parallel, shard.games))
        return SelfPlaySession(self.search, config, self.rules, self.device, **saved)


@dataclass
class Played:
    """An iteration's games as a backend returns them: outputs by shard index, the wall
    time it took, the games dropped as stale (async mode), the actors' restarts, the
    checkpoints of the stream shards' sessions after the iteration, by shard index, and
    (async mode) the shard number a resumed run's stream of shards starts from."""

    outputs: dict[int, SelfPlayOutput]
    seconds: float
    stale_games_dropped: int = 0
    actor_restarts: int = 0
    sessions: dict[int, dict] = field(default_factory=dict)
    next_stream_shard: int | None = None


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
    after = [part.next_stream_shard for part in played if part.next_stream_shard is not None]
    if after:
        merged.stats[NEXT_STREAM_SHARD] = max(after)
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
    """Plays the shards in this process, one after the other, on `device`, keeping the
    sessions of stream shards from one call to the next; `sessions`: checkpoints (by shard
    index) that the streams continue from (a resumed run's)."""

    def __init__(
        self,
        search: SearchConfig,
        games: SelfPlayConfig,
        rules: Rules,
        device: torch.device | str = "cpu",
        progress: bool = True,
        sessions: dict[int, dict] | None = None,
    ):
        self.search, self.games, self.rules = search, games, rules
        self.device, self.progress = torch.device(device), progress
        self.player = ShardPlayer(search, games, rules, self.device)
        self.saved = dict(sessions or {})

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
        sessions: dict[int, dict] = {}
        done = 0
        for shard in shards:
            counted = None if on_game is None else (lambda finished, before=done: on_game(before + finished))
            outputs[shard.index], checkpoint = self.player.play(
                evaluator, shard, iteration, self.saved.get(shard.index), self.progress, counted
            )
            if checkpoint is not None:
                sessions[shard.index] = checkpoint
            done += shard.games
        return Played(outputs, time.perf_counter() - started, sessions=sessions)

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
    start_shard: int = 0,
    sessions: dict[int, dict] | None = None,
) -> SelfPlayBackend:
    """The backend the config names; Ray is imported only when asked for. `sessions`: the
    checkpoints the stream shards continue from (a resumed run's)."""
    if config.backend == "local":
        return LocalBackend(search, games, rules, device, progress, sessions)
    try:
        from razzle.selfplay.ray_backend import RayBackend
    except ImportError as error:
        raise SelfPlayError(f"selfplay.backend=ray needs the ray package: pip install -e '.[ray]' ({error})") from error

    return RayBackend(config, search, games, rules, seed, start_shard, sessions)
