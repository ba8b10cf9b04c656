"""The replay store: one folder per self-play iteration, written atomically.

    replay/
      iter_0000/  samples.pt   the iteration's training samples (one shard)
                  games.txt    every game as a record (razzle.game.notation), blank-line separated
                  stats.json   the iteration's game statistics and sample count
                  sessions.json  with carry-over: each shard's session checkpoint after
                               the iteration (by shard index), what a resumed run continues
      iter_0001/ ...

An iteration is written into a hidden temporary folder and renamed into place, so a crash
never leaves a half iteration that a later read would take; leftovers are removed on open.
Training reads the store as a folder of sample shards (`SampleDataModule`, whose
`max_samples` keeps the newest positions: the replay window).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from pathlib import Path

from razzle.game.notation import GameRecord
from razzle.selfplay.games import SelfPlayOutput

_ITERATION = re.compile(r"^iter_(\d{4,})$")
SESSIONS = "sessions.json"


class ReplayStore:
    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        for leftover in self.root.glob(".tmp-*"):
            shutil.rmtree(leftover, ignore_errors=True)

    def folder(self, iteration: int) -> Path:
        return self.root / f"iter_{iteration:04d}"

    def iterations(self) -> list[int]:
        """Complete iterations, oldest first."""
        found = (_ITERATION.match(p.name) for p in self.root.iterdir() if p.is_dir())
        return sorted(int(m.group(1)) for m in found if m)

    def write(self, iteration: int, output: SelfPlayOutput, sessions: dict[int, dict] | None = None) -> Path:
        """Store an iteration (with the shards' session checkpoints, when given); an
        existing folder of the same number is replaced whole."""
        staging = Path(tempfile.mkdtemp(prefix=".tmp-", dir=self.root))
        try:
            if sessions:
                by_shard = {str(index): sessions[index] for index in sorted(sessions)}
                (staging / SESSIONS).write_text(json.dumps(by_shard, indent=1))
            output.samples.save(staging / "samples.pt", searched_by=output.searched_by)
            records = "\n".join(record.to_text() for record in output.records)
            (staging / "games.txt").write_text(records)
            stats = {"iteration": iteration, "positions": len(output.samples), **output.stats}
            (staging / "stats.json").write_text(json.dumps(stats, indent=1))
            target = self.folder(iteration)
            if target.exists():
                shutil.rmtree(target)
            os.replace(staging, target)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        return target

    def remove(self, iteration: int) -> None:
        shutil.rmtree(self.folder(iteration))

    def stats(self, iteration: int) -> dict:
        return json.loads((self.folder(iteration) / "stats.json").read_text())

    def sessions(self, iteration: int) -> dict[int, dict] | None:
        """The shards' session checkpoints stored with the iteration (None: it has none)."""
        path = self.folder(iteration) / SESSIONS
        if not path.is_file():
            return None
        return {int(index): checkpoint for index, checkpoint in json.loads(path.read_text()).items()}

    def records(self, iteration: int) -> list[GameRecord]:
        text = (self.folder(iteration) / "games.txt").read_text()
        return [GameRecord.from_text(block) for block in text.split("\n\n") if block.strip()]
