"""Self-play on Ray actors: one actor per worker, each holding its own network.

Each iteration the trainer puts the network's weights into Ray's object store once
(`ray.put`); every shard handed to an actor carries a reference to them, and an actor
loads them only when their version changes. Draining shards go to idle actors from a
queue, so a fast actor plays more of them. Stream shards (carry-over) stay on their actor:
shard k is always played by actor k mod actors, which keeps the shard's session (its games
in flight) in memory, and hands back the session's checkpoint with the shard's games; the
driver keeps the newest one. An actor that dies (killed, out of memory, its node lost) is
replaced by a fresh one and the shard it was playing goes back to the front of its queue:
a draining shard is played again from its seed, a stream shard continues from its last
checkpoint (its games in flight start again from their first move). No game is lost or
counted twice, and without deaths the samples are those the local backend produces.

In async mode a background thread keeps every actor busy with the newest weights
published, also while the trainer trains, buffering at most one iteration's shards; an
iteration takes the buffered shards whose network is at most `max_staleness` iterations
old and drops (and counts) the older ones.
"""

from __future__ import annotations

import collections
import copy
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import ray
import torch
from ray.exceptions import ActorUnavailableError, RayActorError

from razzle.game.rules import Rules
from razzle.memory import keep_freed_memory
from razzle.model.evaluator import NetworkEvaluator
from razzle.search import SearchConfig
from razzle.selfplay.backend import BackendConfig, Played, SelfPlayError, Shard, ShardPlayer, shard_seed
from razzle.selfplay.games import SelfPlayConfig, SelfPlayOutput
from razzle.selfplay.status import ActorStatus

log = logging.getLogger(__name__)
ACTOR_DEATHS = (RayActorError, ActorUnavailableError)
POLL_SECONDS = 0.2


class SelfPlayActor:
    """A Ray actor's state: the network (on the GPU share Ray gave it, else the CPU), the
    version of the weights it holds and the sessions of its stream shards. Threaded (two
    calls at a time) so that `games_finished` answers while a shard is being played."""

    def __init__(
        self, network: torch.nn.Module, search: SearchConfig, games: SelfPlayConfig, rules: Rules, threads: int
    ):
        torch.set_num_threads(threads)
        keep_freed_memory()
        device = "cuda" if ray.get_gpu_ids() and torch.cuda.is_available() else "cpu"
        self.evaluator = NetworkEvaluator(network, device)
        self.player = ShardPlayer(search, games, rules, device)
        self.version: int | None = None
        self.finished = 0

    def node(self) -> str:
        return ray.util.get_node_ip_address()

    def games_finished(self) -> int:
        """Games finished of the shard in progress."""
        return self.finished

    def play(
        self, shard: Shard, version: int, weights: list, checkpoint: dict | None
    ) -> tuple[int, SelfPlayOutput, dict | None]:
        """The shard's games with weights `version` (a one-element list, so that Ray hands
        over the reference and the actor fetches the weights only when they are new), and
        its session's checkpoint after them; a stream shard this actor holds no session
        of continues from `checkpoint`."""
        if version != self.version:
            self.evaluator.load_state_dict(ray.get(weights[0]))
            self.version = version
        self.finished = 0
        output, saved = self.player.play(self.evaluator, shard, version, checkpoint, on_game=self._count)
        return version, output, saved

    def _count(self, finished: int) -> None:
        self.finished = finished


@dataclass
class _Task:
    ref: ray.ObjectRef
    shard: Shard
    started: float


class _Slot:
    """One actor place: the current handle, its node and counters over the run."""

    def __init__(self, number: int):
        self.number = number
        self.handle = None
        self.node = "?"
        self.node_ref: ray.ObjectRef | None = None
        self.task: _Task | None = None
        self.games = 0
        self.playing_seconds = 0.0
        self.restarts = 0

    def status(self) -> ActorStatus:
        if self.node == "?":
            state = "restarting" if self.restarts else "starting"
        else:
            state = "playing" if self.task else "idle"
        rate = self.games / self.playing_seconds if self.playing_seconds > 0 else 0.0
        return ActorStatus(self.number, self.node, state, self.games, rate, self.restarts)


class RayBackend:
    """`config.actors` self-play actors on the Ray cluster of `config.ray.address`."""

    def __init__(
        self,
        config: BackendConfig,
        search: SearchConfig,
        games: SelfPlayConfig,
        rules: Rules,
        seed: int,
        start_shard: int = 0,
        sessions: dict[int, dict] | None = None,
    ):
        self.config, self.search, self.games, self.rules, self.seed = config, search, games, rules, seed
        self._sessions = dict(sessions or {})  # the newest checkpoint of each stream shard
        self._started_ray = False
        if not ray.is_initialized():
            try:
                ray.init(
                    address=config.ray.address,
                    num_cpus=config.ray.num_cpus if config.ray.address is None else None,
                    include_dashboard=False,
                    log_to_driver=True,
                )
            except (ConnectionError, RuntimeError, ValueError) as error:
                where = config.ray.address or "a new local cluster"
                raise SelfPlayError(f"cannot start Ray on {where} (ray.address): {error}") from error
            self._started_ray = True
        try:
            self._check_resources()
        except SelfPlayError:
            self._shut_down_own_ray()
            raise
        self._slots = [_Slot(number) for number in range(config.actors)]
        self._network: torch.nn.Module | None = None
        self._weights: ray.ObjectRef | None = None
        self._version = -1
        self._restarts_reported = 0
        self._lock = threading.Condition()
        # async mode: the shard stream, its retries, the finished shards and the thread
        self._shards_per_iteration = config.shard_count()
        self._next_shard = start_shard  # async mode: the stream's next shard number
        self._retry: collections.deque[Shard] = collections.deque()
        self._buffer: list[tuple[int, Shard, SelfPlayOutput]] = []
        self._failure: BaseException | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # --- the backend --------------------------------------------------------------------------
    def play(
        self,
        network: torch.nn.Module,
        iteration: int,
        shards: Sequence[Shard],
        on_game: Callable[[int], None] | None = None,
    ) -> Played:
        started = time.perf_counter()
        self._publish(network, iteration)
        sessions: dict[int, dict] = {}
        next_stream_shard = None
        if self.config.mode == "sync":
            outputs, dropped = self._play_sync(shards, on_game), 0
            sessions = {shard.index: self._sessions[shard.index] for shard in shards if shard.stream}
        else:
            outputs, dropped, next_stream_shard = self._play_async(
                iteration, sum(shard.games for shard in shards), on_game
            )
        with self._lock:
            total = sum(slot.restarts for slot in self._slots)
            restarts, self._restarts_reported = total - self._restarts_reported, total
        played = Played(outputs, time.perf_counter() - started, dropped, restarts, sessions, next_stream_shard)
        log.info("self-play iteration %d on Ray: %s", iteration, self.describe())
        return played

    def actors(self) -> list[ActorStatus]:
        with self._lock:
            for slot in self._slots:
                if slot.node == "?" and slot.node_ref is not None and ray.wait([slot.node_ref], timeout=0)[0]:
                    slot.node = _node_of(slot.node_ref)  # it has started
            return [slot.status() for slot in self._slots]

    def describe(self) -> str:
        """The actors in one line for the run log."""
        return "; ".join(
            f"actor {s.actor} on {s.node}: {s.games} games, {s.games_per_s:.2f} games/s, {s.restarts} restarts"
            for s in self.actors()
        )

    def buffered(self) -> int:
        """Finished shards waiting for an iteration (async mode)."""
        with self._lock:
            return len(self._buffer)

    def handle(self, actor: int):
        """The Ray handle of actor `actor` (to inspect or kill it)."""
        return self._slots[actor].handle

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
        for slot in self._slots:
            if slot.handle is not None:
                ray.kill(slot.handle)
                slot.handle = None
        self._shut_down_own_ray()

    def _shut_down_own_ray(self) -> None:
        """Stops the local cluster if this backend started it (not one it joined)."""
        if self._started_ray:
            ray.shutdown()
            self._started_ray = False

    # --- weights and actors -------------------------------------------------------------------
    def _check_resources(self) -> None:
        """No GPU at all for GPU actors is an error; too few resources for every actor only
        a warning (an autoscaling cluster adds nodes; until then some actors wait)."""
        settings, resources = self.config.ray, ray.cluster_resources()
        if settings.num_gpus_per_actor > 0 and not resources.get("GPU"):
            raise SelfPlayError(
                f"ray.num_gpus_per_actor={settings.num_gpus_per_actor} but the Ray cluster has no GPU; "
                "use 0 for CPU actors or join GPU nodes"
            )
        for name, per_actor in (("CPU", settings.num_cpus_per_actor), ("GPU", settings.num_gpus_per_actor)):
            needed = per_actor * self.config.actors
            if needed > resources.get(name, 0):
                log.warning(
                    "%d actors need %g %ss, the Ray cluster has %g: some actors wait until nodes join",
                    self.config.actors, needed, name, resources.get(name, 0),
                )

    def _publish(self, network: torch.nn.Module, version: int) -> None:
        """The weights into the object store once per iteration; the first call also
        starts the actors (each gets the network's architecture with its first weights)."""
        state = {name: tensor.detach().cpu() for name, tensor in network.state_dict().items()}
        weights = ray.put(state)
        with self._lock:
            self._weights, self._version = weights, version
            if self._network is None:
                self._network = copy.deepcopy(network).cpu()
                for slot in self._slots:
                    self._start_actor(slot)

    def _start_actor(self, slot: _Slot) -> None:
        settings = self.config.ray
        actor = ray.remote(SelfPlayActor).options(
            num_cpus=settings.num_cpus_per_actor, num_gpus=settings.num_gpus_per_actor, max_concurrency=2
        )
        threads = max(1, int(settings.num_cpus_per_actor))
        slot.handle = actor.remote(self._network, self.search, self.games, self.rules, threads)
        slot.node, slot.node_ref = "?", slot.handle.node.remote()

    def _restart(self, slot: _Slot, error: BaseException) -> None:
        """A fresh actor in place of a dead one (Ray places it wherever resources are)."""
        slot.restarts += 1
        if slot.restarts > self.config.ray.max_restarts:
            raise SelfPlayError(
                f"self-play actor {slot.number} died {slot.restarts} times (ray.max_restarts="
                f"{self.config.ray.max_restarts}); last: {error}"
            )
        log.warning(
            "self-play actor %d died (%s); starting it again, its shard is played again (a stream shard from "
            "its last checkpoint)",
            slot.number,
            error,
        )
        ray.kill(slot.handle)
        self._start_actor(slot)

    def _submit(self, slot: _Slot, shard: Shard) -> None:
        checkpoint = self._sessions.get(shard.index) if shard.stream else None
        ref = slot.handle.play.remote(shard, self._version, [self._weights], checkpoint)
        slot.task = _Task(ref, shard, time.perf_counter())

    def _finished(
        self, timeout: float | None
    ) -> list[tuple[_Slot, Shard, tuple[int, SelfPlayOutput, dict | None] | None]]:
        """Waits for the next shard to finish (at most `timeout` seconds); for each one,
        its result, or None when its actor died (the actor is started again)."""
        running = {slot.task.ref: slot for slot in self._slots if slot.task is not None}
        if not running:
            return []
        ready, _ = ray.wait(list(running), num_returns=1, timeout=timeout)
        results = []
        for ref in ready:
            slot = running[ref]
            task, slot.task = slot.task, None
            try:
                result = ray.get(ref)
            except ACTOR_DEATHS as error:
                with self._lock:
                    self._restart(slot, error)
                results.append((slot, task.shard, None))
                continue
            with self._lock:
                slot.games += task.shard.games
                slot.playing_seconds += time.perf_counter() - task.started
            results.append((slot, task.shard, result))
        return results

    # --- sync: the given shards, with this iteration's weights ----------------------------
    def _play_sync(self, shards: Sequence[Shard], on_game: Callable[[int], None] | None) -> dict[int, SelfPlayOutput]:
        """Draining shards from one queue to whichever actor is idle; stream shards each
        from its actor's own queue (shard k on actor k mod actors)."""
        shared: collections.deque[Shard] = collections.deque(shard for shard in shards if not shard.stream)
        own = {slot.number: collections.deque() for slot in self._slots}
        for shard in shards:
            if shard.stream:
                own[shard.index % len(self._slots)].append(shard)
        outputs: dict[int, SelfPlayOutput] = {}
        done = 0
        while len(outputs) < len(shards):
            for slot in self._slots:
                queue = own[slot.number] or shared
                if slot.task is None and queue:
                    self._submit(slot, queue.popleft())
            for slot, shard, result in self._finished(timeout=None):
                if result is None:  # played again: from its seed, or its stream's last checkpoint
                    (own[slot.number] if shard.stream else shared).appendleft(shard)
                    continue
                outputs[shard.index] = result[1]
                if result[2] is not None:
                    self._sessions[shard.index] = result[2]
                done += shard.games
                if on_game is not None:
                    on_game(done)
        return outputs

    # --- async: a stream of shards, the newest weights, stale ones dropped --------------------
    def _play_async(
        self, iteration: int, games: int, on_game: Callable[[int], None] | None
    ) -> tuple[dict[int, SelfPlayOutput], int, int]:
        """The iteration's shards from the stream, the games dropped as stale, and the
        number after the newest stream shard taken (where a resumed run's stream starts:
        with shards dropped, an iteration may take shards numbered past its own)."""
        per_shard = games // self._shards_per_iteration
        if per_shard * self._shards_per_iteration != games:
            raise SelfPlayError(
                f"selfplay.mode=async needs selfplay.games ({games}) to be a multiple of the shards "
                f"({self._shards_per_iteration})"
            )
        self._per_shard = per_shard
        if self._thread is None:
            self._thread = threading.Thread(target=self._dispatch, name="razzle-selfplay-dispatch", daemon=True)
            self._thread.start()
        taken: list[tuple[int, Shard, SelfPlayOutput]] = []
        dropped = 0
        with self._lock:
            while len(taken) < self._shards_per_iteration:
                if self._failure is not None:
                    raise SelfPlayError(f"self-play on Ray failed: {self._failure}") from self._failure
                fresh = []
                for version, shard, output in self._buffer:
                    if iteration - version > self.config.max_staleness:
                        dropped += shard.games
                    else:
                        fresh.append((version, shard, output))
                wanted = self._shards_per_iteration - len(taken)
                taken += fresh[:wanted]
                self._buffer = fresh[wanted:]
                self._lock.notify_all()  # room in the buffer: the dispatcher plays on
                if on_game is not None and taken:
                    on_game(sum(shard.games for _, shard, _ in taken))
                if len(taken) < self._shards_per_iteration:
                    self._lock.wait(POLL_SECONDS)
        outputs = {}
        for number, (_, shard, output) in enumerate(sorted(taken, key=lambda item: (item[1].iteration, item[1].index))):
            records = [replace(r, headers={**r.headers, "Iteration": str(iteration)}) for r in output.records]
            outputs[number] = replace(output, records=records)
        after = 1 + max(shard.iteration * self._shards_per_iteration + shard.index for _, shard, _ in taken)
        return outputs, dropped, after

    def _take_shard(self) -> Shard:
        if self._retry:
            return self._retry.popleft()
        number, self._next_shard = self._next_shard, self._next_shard + 1
        iteration, index = divmod(number, self._shards_per_iteration)
        return Shard(iteration, index, self._per_shard, shard_seed(self.seed, iteration, index))

    def _dispatch(self) -> None:
        """The async mode's thread: idle actors get the next shard with the newest weights
        while fewer than one iteration's shards are finished or on their way."""
        try:
            while not self._stop.is_set():
                with self._lock:
                    busy = sum(slot.task is not None for slot in self._slots)
                    for slot in self._slots:
                        if slot.task is None and len(self._buffer) + busy < self._shards_per_iteration:
                            self._submit(slot, self._take_shard())
                            busy += 1
                for _, shard, result in self._finished(timeout=POLL_SECONDS):
                    with self._lock:
                        if result is None:
                            self._retry.append(shard)
                        else:
                            self._buffer.append((result[0], shard, result[1]))
                            self._lock.notify_all()
        except BaseException as error:  # handed to the trainer's thread, which raises it
            with self._lock:
                self._failure = error
                self._lock.notify_all()


def _node_of(reference: ray.ObjectRef) -> str:
    """The address an actor reported (asked when it started)."""
    try:
        return ray.get(reference, timeout=10)
    except (*ACTOR_DEATHS, ray.exceptions.GetTimeoutError):
        return "?"
