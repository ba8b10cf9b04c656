"""Test helpers that a run picks up through Hydra overrides (so they also reach the processes
Lightning's DDP launcher starts): a handler that stops the run at a chosen point, and a
callback that records which samples each process trains on."""

from __future__ import annotations

import hashlib
import json
import os
import signal
from pathlib import Path

import lightning as L

from razzle.model.samples import Samples


class StopRun(Exception):
    """Raised by `StopAt` where the run is told to die."""


class StopAt:
    """A loop handler that kills the run when the progress of `iteration` reaches `done`
    units of `phase`: with `sigkill`, the process kills itself (as a crash would); else
    it raises StopRun."""

    def __init__(self, iteration: int, phase: str, done: int, sigkill: bool = False):
        self.iteration, self.phase, self.done, self.sigkill = iteration, phase, done, sigkill

    def on_run_start(self, previous) -> None:
        pass

    def on_iteration(self, report) -> None:
        pass

    def on_run_end(self) -> None:
        pass

    def on_progress(self, progress) -> None:
        if (progress.iteration, progress.phase, progress.done) != (self.iteration, self.phase, self.done):
            return
        if self.sigkill:
            os.kill(os.getpid(), signal.SIGKILL)
        raise StopRun(f"stopped at {progress}")


def fingerprints(samples: Samples) -> list[str]:
    """One digest per sample, of everything it holds."""
    parts = (samples.planes, samples.legal, samples.policy, samples.value, samples.difficulty, samples.turn)
    rows = [part.reshape(len(samples), -1).contiguous().numpy() for part in parts]
    return [hashlib.sha1(b"".join(row[i].tobytes() for row in rows)).hexdigest() for i in range(len(samples))]


class RecordBatches(L.Callback):
    """Writes, per process and epoch, the fingerprints of the window the DataModule holds
    and of every sample trained on: `<dirpath>/rank<r>_epoch<e>.json`."""

    def __init__(self, dirpath: str):
        self.dirpath = Path(dirpath)
        self.seen: list[str] = []

    def on_train_epoch_start(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        self.seen = []

    def on_train_batch_start(self, trainer, module, batch: Samples, batch_idx: int) -> None:
        self.seen += fingerprints(batch.to("cpu"))

    def on_train_epoch_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        self.dirpath.mkdir(parents=True, exist_ok=True)
        record = {"window": fingerprints(trainer.datamodule.train_samples), "trained": self.seen}
        path = self.dirpath / f"rank{trainer.global_rank}_epoch{trainer.current_epoch}.json"
        path.write_text(json.dumps(record))


class RecordActors:
    """A loop handler that writes the self-play actors of the last progress report that
    named any to `path` (JSON), when the run ends."""

    def __init__(self, path: str):
        self.path = Path(path)
        self.actors: list[dict] = []

    def on_run_start(self, previous) -> None:
        pass

    def on_iteration(self, report) -> None:
        pass

    def on_progress(self, progress) -> None:
        if progress.actors:
            self.actors = [actor.as_dict() for actor in progress.actors]

    def on_run_end(self) -> None:
        self.path.write_text(json.dumps(self.actors))
