"""What the training loop tells its handlers: progress within an iteration, and one typed
report per finished iteration.

Handlers are plain objects (the Lightning loggers, the metrics publisher of
`razzle.server`, the end-of-run summary), built from the Hydra config and called by the
loop on the process of global rank 0 only. This module imports neither torch nor
Lightning, so the server implements the protocols without either.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Literal, Protocol, runtime_checkable

from razzle.selfplay.status import ActorStatus

Phase = Literal["selfplay", "training", "evaluation"]


@dataclass(frozen=True)
class Progress:
    """`done` of `total` units of a phase of an iteration: games (self-play, the games of
    the reporting process under DDP), epochs (training), baselines (evaluation); with a
    backend of self-play actors, what each of them is doing."""

    iteration: int
    phase: Phase
    done: int
    total: int
    actors: tuple[ActorStatus, ...] = ()


@dataclass(frozen=True)
class IterationReport:
    """One finished iteration, every metric under its canonical name (razzle.metric_names).

    heldout:     the network on the iteration's fresh games, before training on them
    games:       the self-play statistics, with `games` and `positions`
    training:    the iteration's last training epoch on the window (names without the
                 `train/` prefix that Lightning's own per-epoch rows carry)
    evaluation:  `eval_<opponent>_<stat>` of the matches, empty when none were played
    reliability: the reliability diagram of the held-out value predictions
    """

    iteration: int
    heldout: dict[str, float]
    games: dict[str, float]
    training: dict[str, float]
    evaluation: dict[str, float]
    reliability: dict[str, list[float]]
    model_path: str
    epoch: int
    global_step: int
    lr: float
    selfplay_seconds: float
    training_seconds: float
    evaluation_seconds: float
    iteration_seconds: float = field(init=False)

    def __post_init__(self) -> None:
        total = self.selfplay_seconds + self.training_seconds + self.evaluation_seconds
        object.__setattr__(self, "iteration_seconds", total)

    def metrics(self) -> dict[str, float]:
        """Every number of the iteration but the training epoch's, under the names the
        loggers, the metrics store and the dashboard share."""
        return {
            **self.heldout,
            **self.games,
            **self.evaluation,
            "lr": self.lr,
            "iteration_seconds": self.iteration_seconds,
            "selfplay_seconds": self.selfplay_seconds,
            "training_seconds": self.training_seconds,
            "evaluation_seconds": self.evaluation_seconds,
        }

    def to_dict(self) -> dict:
        values = asdict(self)
        del values["iteration_seconds"]
        return values

    @classmethod
    def from_dict(cls, values: dict) -> IterationReport:
        return cls(**values)


@runtime_checkable
class IterationHandler(Protocol):
    """Told when the run starts (with the reports of iterations finished before a resume),
    after every iteration, and when the run ends (also after an error)."""

    def on_run_start(self, previous: Sequence[IterationReport]) -> None: ...

    def on_iteration(self, report: IterationReport) -> None: ...

    def on_run_end(self) -> None: ...


@runtime_checkable
class ProgressHandler(Protocol):
    """Told as each game, epoch or evaluation match of an iteration finishes."""

    def on_progress(self, progress: Progress) -> None: ...
