"""The AlphaZero loop, explicit: self-play between fits of one continued Trainer.

Per iteration k (`AlphaZeroLoop.run`, in the manner of AlphaZero.jl's `train!`):

1. self-play: the current network finishes `games` games with batched MCTS, split into
   shards of fixed seeds (razzle.selfplay.backend) and played by the self-play backend:
   here (under DDP every process plays its share of the shards) or by Ray actors; with
   carry-over each shard is a stream whose unfinished games go on in the next iteration;
   rank 0 writes them all as `replay/iter_k`, with the shards' session checkpoints;
2. the network is measured on those fresh games before it trains on them (held out by
   construction; torchmetrics reduces the processes' shares);
3. the Trainer continues for `epochs_per_iteration` epochs on the newest window (one
   Trainer, one optimizer, one global step, one set of loggers for the whole run); or,
   with `samples_per_position` (the replay ratio of KataGo and lc0), for one epoch that
   draws new positions x samples_per_position samples from the window, so that every
   position is trained on about that many times over its life in the window, whatever
   the window's size. With `window_min` the window grows with the run (KataGo): it holds
   min(data.max_samples, window_min + window_growth x positions played so far), so the
   first iterations' weak games leave it sooner;
4. `models/iter_k.pt` is exported and, every `eval_every` iterations, the network plays
   the baselines and earlier models of the run on its Elo ladder (`ladder.json`);
5. one `IterationReport` goes to the handlers (loggers, metrics store, summary).

Progress (`razzle.train.report.Progress`) goes to the handlers that take it as each game,
epoch and evaluation match finishes. Handlers run on global rank 0 only.

Resumption: `loop_state.json` in the run folder (written atomically after every stage)
says which stage of which iteration is done; with Lightning's `last.ckpt` and the replay
store, `resume=<run dir>` continues at the same stage: an iteration's games are played
once (a replay folder is written whole or not at all), its held-out metrics are measured
before its training, its epochs continue from the last checkpoint, and its report is
handed on once; the shards' streams continue from the sessions saved with the newest
replay folder (their games in flight start again), so no game is lost or stored twice.
"""

from __future__ import annotations

import copy
import json
import logging
import os
import signal
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import lightning as L
import torch
from lightning.pytorch.callbacks import ModelSummary
from lightning.pytorch.strategies.launchers.subprocess_script import _SubprocessScriptLauncher

from razzle.game.rules import Rules
from razzle.metric_names import DISTRIBUTED_METRICS, GAME_METRICS
from razzle.model.evaluator import NetworkEvaluator
from razzle.model.io import save_model_file
from razzle.model.samples import Samples
from razzle.search import MCTSPlayer, RandomPlayer, SearchConfig, UniformEvaluator, play_match
from razzle.search.ladder import Ladder, rate_new_model
from razzle.selfplay.backend import (
    NEXT_STREAM_SHARD,
    BackendConfig,
    SelfPlayBackend,
    make_backend,
    merge_played,
    plan_shards,
)
from razzle.selfplay.games import SelfPlayConfig
from razzle.selfplay.replay import ReplayStore
from razzle.train import distributed
from razzle.train.data import SampleDataModule
from razzle.train.metrics import learning_metrics
from razzle.train.module import AlphaZeroModule
from razzle.train.report import IterationHandler, IterationReport, Phase, Progress, ProgressHandler

log = logging.getLogger(__name__)
STATE_FILE = "loop_state.json"
LADDER_FILE = "ladder.json"
CHECKPOINT = Path("checkpoints") / "last.ckpt"
MEASURE_BATCH = 512
BASELINES = ("random", "mcts")


class LoopError(Exception):
    """A run the loop cannot start or continue; the message says why."""


@dataclass
class LoopState:
    """Where the run is: `iteration` is in progress, `epoch` epochs were trained before it;
    `heldout` is set once its fresh games are measured, `training` once its epochs are
    done; `history` holds the reports of the finished iterations."""

    iteration: int = 0
    epoch: int = 0
    heldout: dict[str, float] | None = None
    reliability: dict[str, list[float]] | None = None
    measure_seconds: float = 0.0
    target_epoch: int | None = None
    training: dict | None = None
    history: list[dict] = field(default_factory=list)

    @classmethod
    def load(cls, path: Path) -> LoopState:
        try:
            return cls(**json.loads(path.read_text()))
        except (OSError, ValueError, TypeError) as error:
            raise LoopError(f"cannot read the loop state {path}: {error}") from error

    def save(self, path: Path) -> None:
        """Write to a temporary file beside `path`, then rename: a kill leaves the old state."""
        handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        try:
            with os.fdopen(handle, "w") as file:
                json.dump(asdict(self), file, indent=1)
            os.replace(temporary, path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise

    def finished(self) -> list[IterationReport]:
        return [IterationReport.from_dict(values) for values in self.history]


class _EpochProgress(L.Callback):
    """Reports each finished training epoch of the iteration in progress to the loop."""

    def __init__(self, loop: AlphaZeroLoop):
        self.loop = loop

    def on_train_epoch_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        self.loop._epoch_finished(trainer.current_epoch + 1)


class AlphaZeroLoop:
    """run_dir: the run folder (replay/, models/, checkpoints/, the loop state);
    games: the self-play settings of one iteration (`games.games` in all);
    distribution: who plays them (the local process or Ray actors, in how many shards,
    synchronously or not; razzle.selfplay.backend.BackendConfig); iterations: the run's
    length; seed: of self-play and evaluation;
    ladder_games: games against each ladder opponent at every evaluation (0: no ladder),
    searched with `ladder_simulations`;
    samples_per_position: the replay ratio (None: `epochs_per_iteration` whole passes);
    window_min, window_growth: the growing window (None: the DataModule's fixed one)."""

    def __init__(
        self,
        run_dir: str,
        rules: Rules,
        search: SearchConfig,
        games: SelfPlayConfig,
        iterations: int,
        epochs_per_iteration: int = 2,
        eval_every: int = 2,
        eval_games: int = 20,
        ladder_games: int = 10,
        ladder_simulations: int = 32,
        seed: int = 0,
        progress: bool = True,
        samples_per_position: float | None = None,
        window_min: int | None = None,
        window_growth: float = 0.5,
        distribution: BackendConfig | None = None,
    ):
        if iterations < 1 or epochs_per_iteration < 1:
            raise ValueError(
                f"selfplay.iterations and selfplay.epochs_per_iteration must be >= 1, got {iterations} and "
                f"{epochs_per_iteration}"
            )
        if eval_every < 0 or eval_games < 0 or ladder_games < 0:
            raise ValueError(
                "selfplay.eval_every, selfplay.eval_games and selfplay.ladder_games must be >= 0 (0 turns them off)"
            )
        if samples_per_position is not None and not (
            isinstance(samples_per_position, (int, float))
            and not isinstance(samples_per_position, bool)
            and 0 < samples_per_position < float("inf")
        ):
            raise ValueError(
                "selfplay.samples_per_position must be a number > 0 or null (epochs instead), "
                f"got {samples_per_position!r}"
            )
        if window_min is not None and not (
            isinstance(window_min, int) and not isinstance(window_min, bool) and window_min >= 1
        ):
            raise ValueError(
                f"selfplay.window_min must be an integer >= 1 or null (a fixed window), got {window_min!r}"
            )
        if isinstance(window_growth, bool) or not (
            isinstance(window_growth, (int, float)) and 0 <= window_growth < float("inf")
        ):
            raise ValueError(f"selfplay.window_growth must be a number >= 0, got {window_growth!r}")
        self.run_dir = Path(run_dir)
        self.rules, self.search, self.games = rules, search, games
        self.iterations, self.samples_per_position = iterations, samples_per_position
        self.window_min, self.window_growth = window_min, window_growth
        self._window_cap: int | None = None  # data.max_samples, the growing window's limit
        # A replay ratio trains one epoch of drawn samples per iteration.
        self.epochs_per_iteration = 1 if samples_per_position is not None else epochs_per_iteration
        self.eval_every, self.eval_games = eval_every, eval_games
        self.ladder_games, self.ladder_simulations = ladder_games, ladder_simulations
        self.seed = seed
        self.distribution = distribution or BackendConfig()
        self._backend: SelfPlayBackend | None = None
        self.progress = progress
        self.state_path = self.run_dir / STATE_FILE
        self.models_dir = self.run_dir / "models"
        self._handlers: list[IterationHandler] = []
        self._progress_handlers: list[ProgressHandler] = []
        self._checkpoint: Path | None = None  # restores the Trainer at the session's first fit
        self._state = LoopState()

    # --- the run --------------------------------------------------------------------------
    def run(
        self,
        trainer: L.Trainer,
        module: AlphaZeroModule,
        datamodule: SampleDataModule,
        handlers: Sequence[IterationHandler] = (),
        resume: bool = False,
    ) -> list[IterationReport]:
        """Run (or, with `resume`, continue) the loop to `iterations`; returns every report
        on rank 0 (an empty list elsewhere)."""
        _start_processes(trainer)
        lead = distributed.rank() == 0
        try:
            self._start(trainer, module, datamodule, handlers if lead else (), resume)
            try:
                while self._state.iteration < self.iterations:
                    self._iteration(trainer, module, datamodule)
            finally:
                if self._backend is not None:
                    self._backend.close()
                for handler in self._handlers:
                    handler.on_run_end()
        except BaseException:
            if lead and isinstance(trainer.strategy.launcher, _SubprocessScriptLauncher):
                trainer.strategy.launcher.kill(signal.SIGKILL)  # the other ranks wait in a collective
            raise
        return self._state.finished() if lead else []

    def _start(
        self,
        trainer: L.Trainer,
        module: AlphaZeroModule,
        datamodule: SampleDataModule,
        handlers: Sequence[IterationHandler],
        resume: bool,
    ) -> None:
        """The state (rank 0's, on every rank), the weights to continue from, the replay
        store without stale iterations, then the handlers' start."""
        lead = distributed.rank() == 0
        self._set_handlers(handlers)
        self._state = distributed.broadcast(self._initial_state(resume) if lead else None)
        checkpoint = self.run_dir / CHECKPOINT
        if resume and checkpoint.is_file():
            weights = torch.load(checkpoint, map_location="cpu", weights_only=False)["state_dict"]
            module.load_state_dict(weights)
            self._checkpoint = checkpoint
        elif self._state.iteration > 0 or self._state.target_epoch is not None:
            raise LoopError(f"cannot resume {self.run_dir}: its checkpoint {checkpoint} is missing")
        distributed.broadcast_module(module)
        if lead:
            self.store = ReplayStore(datamodule.dir)
            for stale in [i for i in self.store.iterations() if i > self._state.iteration]:
                self.store.remove(stale)  # played after the state was saved
            self._state.save(self.state_path)
        distributed.barrier()
        if not lead:
            self.store = ReplayStore(datamodule.dir)
        self._window_cap = datamodule.max_samples
        if lead or self.distribution.backend == "local":  # Ray actors are driven by rank 0 alone
            sessions = self._saved_sessions() if self.distribution.keeps_sessions else None
            self._backend = make_backend(
                self.distribution,
                self.search,
                self.games,
                self.rules,
                self.seed,
                trainer.strategy.root_device,
                progress=self.progress and lead,
                start_shard=self._async_stream_start(),
                sessions=sessions,
            )
        trainer.callbacks.append(_EpochProgress(self))
        for handler in self._handlers:
            handler.on_run_start(self._state.finished())

    def _saved_sessions(self) -> dict[int, dict] | None:
        """The shards' session checkpoints of the newest stored iteration (a resumed run
        continues its streams from them; None: the streams begin)."""
        played = self.store.iterations()
        sessions = self.store.sessions(played[-1]) if played else None
        count = self._shard_count()
        if sessions is not None and sorted(sessions) != list(range(count)):
            raise LoopError(
                f"{self.store.folder(played[-1])} holds the sessions of {len(sessions)} shards, this run plays "
                f"{count}: resume with the run's selfplay.shards (or selfplay.carry_over=false)"
            )
        return sessions

    def _async_stream_start(self) -> int:
        """Where an async run's stream of shards starts: after the newest shard any stored
        iteration took (a resumed run never plays a shard whose games are stored)."""
        played = self.store.iterations()
        newest = self.store.stats(played[-1]).get(NEXT_STREAM_SHARD) if played else None
        return int(newest) if newest is not None else self._state.iteration * self._shard_count()

    def _shard_count(self) -> int:
        """Shards per iteration: under DDP with the local backend, at least one per process."""
        world = distributed.world_size()
        local = self.distribution.backend == "local"
        count = self.distribution.shard_count(world if local else 1)
        if local and count < world:
            raise LoopError(f"selfplay.shards ({count}) must be at least the number of processes ({world})")
        return count

    def _initial_state(self, resume: bool) -> LoopState:
        if resume:
            if not self.state_path.is_file():
                raise LoopError(
                    f"resume={self.run_dir}: not a run folder of the self-play loop (no {STATE_FILE} there)"
                )
            return LoopState.load(self.state_path)
        if self.state_path.exists():
            raise LoopError(
                f"{self.run_dir} already holds a run ({STATE_FILE}): continue it with resume={self.run_dir} "
                "or start a new run in another folder"
            )
        self.run_dir.mkdir(parents=True, exist_ok=True)
        return LoopState()

    def _set_handlers(self, handlers: Sequence[IterationHandler]) -> None:
        for handler in handlers:
            if not isinstance(handler, IterationHandler):
                raise TypeError(f"{type(handler).__name__} is not a handler: it needs on_run_start, on_iteration, on_run_end")
        self._handlers = list(handlers)
        self._progress_handlers = [h for h in handlers if isinstance(h, ProgressHandler)]

    def _report_progress(self, phase: Phase, done: int, total: int) -> None:
        actors = tuple(self._backend.actors()) if self._backend is not None else ()
        progress = Progress(self._state.iteration, phase, done, total, actors)
        for handler in self._progress_handlers:
            handler.on_progress(progress)

    def _epoch_finished(self, epoch: int) -> None:
        target = self._state.target_epoch
        if target is not None:
            first = target - self.epochs_per_iteration
            self._report_progress("training", epoch - first, self.epochs_per_iteration)

    def _save(self) -> None:
        if distributed.rank() == 0:
            self._state.save(self.state_path)

    # --- one iteration ------------------------------------------------------------------------
    def _iteration(self, trainer: L.Trainer, module: AlphaZeroModule, datamodule: SampleDataModule) -> None:
        state, iteration = self._state, self._state.iteration
        device = trainer.strategy.root_device
        if state.heldout is None:
            played = distributed.broadcast(iteration in self.store.iterations())
            if not played:
                self._play(module, iteration)
            started = time.perf_counter()
            samples = Samples.load(self.store.folder(iteration) / "samples.pt")
            share = samples[distributed.rank() :: distributed.world_size()]
            state.heldout, state.reliability = _measure(module, share, device)
            state.measure_seconds = time.perf_counter() - started
            state.target_epoch = state.epoch + self.epochs_per_iteration
            self._save()

        if state.training is None:
            if self.window_min is not None:
                played = sum(self.store.stats(i)["positions"] for i in range(iteration + 1))
                datamodule.max_samples = window_size(self._window_cap, self.window_min, self.window_growth, played)
            datamodule.load_window()
            if self.samples_per_position is not None:
                datamodule.train_draws = training_draws(
                    datamodule.newest_train_samples, self.samples_per_position, datamodule.batch_size
                )
            trainer.fit_loop.max_epochs = state.target_epoch
            started = time.perf_counter()
            checkpoint, self._checkpoint = self._checkpoint, None
            trainer.fit(module, datamodule=datamodule, ckpt_path=checkpoint)
            # The model's table once per run, not once per iteration.
            trainer.callbacks = [c for c in trainer.callbacks if not isinstance(c, ModelSummary)]
            state.training = {
                "metrics": dict(module.epoch_metrics),
                "seconds": time.perf_counter() - started,
                "epoch": trainer.current_epoch,
                "global_step": trainer.global_step,
                "lr": float(trainer.optimizers[0].param_groups[0]["lr"]),
            }
            self._save()

        started = time.perf_counter()
        model_path = self.models_dir / f"iter_{iteration:04d}.pt"
        evaluation: dict[str, float] = {}
        if distributed.rank() == 0:
            metadata = {"iteration": iteration, "epoch": state.training["epoch"], "rules": vars(self.rules)}
            save_model_file(module.net, model_path, metadata)
            last = iteration == self.iterations - 1
            if self.eval_every and (iteration % self.eval_every == 0 or last):
                evaluation = self._evaluate(module, device)
                evaluation.update(self._rate(model_path, iteration, device))
        distributed.barrier()
        evaluation_seconds = time.perf_counter() - started + state.measure_seconds

        if distributed.rank() == 0:
            report = self._report(iteration, model_path, evaluation, evaluation_seconds)
            for handler in self._handlers:
                handler.on_iteration(report)
            state.history.append(report.to_dict())
        self._state = LoopState(iteration=iteration + 1, epoch=state.training["epoch"], history=state.history)
        self._save()

    def _play(self, module: AlphaZeroModule, iteration: int) -> None:
        """The iteration's shards: every process plays its share with the local backend,
        rank 0 alone drives Ray actors; rank 0 writes them all, with the checkpoints of the
        shards' sessions when their games carry over."""
        rank, world = distributed.rank(), distributed.world_size()
        local = self.distribution.backend == "local"
        stream = self.distribution.keeps_sessions
        shards = plan_shards(self.games.games, self._shard_count(), self.seed, iteration, stream)
        mine = shards[rank::world] if local else shards
        lead = rank == 0
        played = None
        if self._backend is not None:
            total = sum(shard.games for shard in mine)
            played = self._backend.play(
                module.net,
                iteration,
                mine,
                (lambda done: self._report_progress("selfplay", done, total)) if lead else None,
            )
        parts = distributed.gather(played)
        if lead:
            parts = [part for part in parts if part is not None]
            sessions = {index: checkpoint for part in parts for index, checkpoint in part.sessions.items()}
            self.store.write(iteration, merge_played(parts), sessions)
        distributed.barrier()  # every rank reads the window only once it is written

    def _evaluate(self, module: AlphaZeroModule, device: torch.device) -> dict[str, float]:
        """The current network with search against a random player and against MCTS with a
        uniform prior at the same simulations; colours alternate."""
        player = MCTSPlayer(NetworkEvaluator(copy.deepcopy(module.net), device), self.search, seed=self.seed)
        opponents = {
            "random": RandomPlayer(seed=self.seed + 1),
            "mcts": MCTSPlayer(UniformEvaluator(), self.search, seed=self.seed + 2),
        }
        results: dict[str, float] = {}
        if not self.eval_games:
            return results
        self._report_progress("evaluation", 0, len(BASELINES))
        for done, name in enumerate(BASELINES, start=1):
            match = play_match(player, opponents[name], self.eval_games, self.rules)
            results[f"eval_{name}_win_rate"] = match.wins / match.games
            results[f"eval_{name}_score"] = match.score
            self._report_progress("evaluation", done, len(BASELINES))
        return results

    def _rate(self, model_path: Path, iteration: int, device: torch.device) -> dict[str, float]:
        """The new model's Elo: games against the previous model, models 2, 4, 8, ...
        iterations back and random play (rated 0); the ladder file keeps every result, so a
        resumed run plays no pair twice."""
        if not self.ladder_games:
            return {}
        ladder = Ladder.open(self.run_dir / LADDER_FILE, anchor="random", simulations=self.ladder_simulations)
        return rate_new_model(ladder, model_path, iteration, self.ladder_games, device=device, seed=self.seed)

    def _report(self, iteration: int, model_path: Path, evaluation: dict, evaluation_seconds: float) -> IterationReport:
        state = self._state
        stats = self.store.stats(iteration)
        training = state.training
        return IterationReport(
            iteration=iteration,
            heldout=state.heldout,
            games={
                **{name: stats[name] for name in GAME_METRICS},
                **{name: stats[name] for name in DISTRIBUTED_METRICS if name in stats},
                "games": float(self.games.games),
                "positions": float(stats["positions"]),
            },
            training=training["metrics"],
            evaluation=evaluation,
            reliability=state.reliability,
            model_path=str(model_path),
            epoch=training["epoch"],
            global_step=training["global_step"],
            lr=training["lr"],
            selfplay_seconds=stats["selfplay_seconds"],
            training_seconds=training["seconds"],
            evaluation_seconds=evaluation_seconds,
        )


def window_size(cap: int | None, window_min: int, growth: float, played: int) -> int:
    """The growing window after `played` positions: window_min + growth x played, at most
    `cap` (None: no cap)."""
    grown = window_min + int(growth * played)
    return grown if cap is None else min(cap, grown)


def training_draws(new_positions: int, samples_per_position: float, batch_size: int) -> int:
    """Samples to train on in an iteration that added `new_positions` to the window: their
    number times the replay ratio, in whole batches (at least one)."""
    return max(1, round(new_positions * samples_per_position / batch_size)) * batch_size


def _start_processes(trainer: L.Trainer) -> None:
    """Under DDP, start the other processes and the process group now, before the first
    self-play, instead of at the first `fit`. Lightning's script launcher runs this script
    again in each child (which reaches this point as a rank > 0 and launches nothing)."""
    if trainer.world_size == 1:
        return
    launcher = trainer.strategy.launcher
    if not isinstance(launcher, _SubprocessScriptLauncher):
        raise LoopError(
            f"the self-play loop runs multi-process training as strategy=ddp (one script per process); "
            f"{type(trainer.strategy).__name__} with {type(launcher).__name__} is not supported"
        )
    launcher.launch(lambda: None, trainer=trainer)
    trainer.strategy.setup_environment()


@torch.no_grad()
def _measure(module: AlphaZeroModule, samples: Samples, device: torch.device) -> tuple[dict[str, float], dict]:
    """The learning metrics of the network on games it has not trained on yet, reduced
    across processes (each measures its share)."""
    metrics = learning_metrics().to(device)
    module.to(device)
    was_training = module.training
    module.eval()
    for start in range(0, len(samples), MEASURE_BATCH):
        module.measure(samples[start : start + MEASURE_BATCH].to(device), metrics)
    module.train(was_training)
    values = {name: float(value) for name, value in metrics.compute().items()}
    return values, metrics["value_calibration_error"].reliability()
