"""The Lightning loggers as a handler of the training loop: one row per iteration."""

from __future__ import annotations

from collections.abc import Sequence

from lightning.pytorch.loggers import Logger

from razzle.train.report import IterationReport


class LoggerHandler:
    """Logs every iteration report to each Lightning logger (CSV, W&B, TensorBoard) at the
    trainer's global step, under the canonical names plus `iteration`. Lightning's own
    per-epoch rows (`train/*`, `val/*`) stay as they are."""

    def __init__(self, loggers: Sequence[Logger]):
        self.loggers = list(loggers)

    def on_run_start(self, previous: Sequence[IterationReport]) -> None:
        """Earlier iterations were logged by the session that ran them."""

    def on_iteration(self, report: IterationReport) -> None:
        row = {"iteration": float(report.iteration), **report.metrics()}
        for logger in self.loggers:
            logger.log_metrics(row, step=report.global_step)
            logger.save()  # a killed run keeps every finished iteration's row

    def on_run_end(self) -> None:
        for logger in self.loggers:
            logger.save()
