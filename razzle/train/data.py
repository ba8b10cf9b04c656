"""The DataModule over a directory of sample shards (the replay window).

Samples live in memory as one `Samples` of tensors; a batch is a single fancy index
(`__getitems__`), not 512 separate items stacked. The directory is read once, when the
first dataloader is asked for, and again whenever the training loop calls `load_window`
(after self-play has written an iteration), so each iteration trains on the newest window.
Under DDP Lightning gives every process its own share of the window (a distributed
sampler), so the processes train on disjoint samples of the same window.

By default an epoch is one pass over the window. With `train_draws` set (the loop sets it
from `selfplay.samples_per_position`) an epoch draws that many samples instead
(`WindowDraws`), whatever the window's size: how often each position is trained on is
then a setting of its own, not a product of the window and the epochs.
"""

from __future__ import annotations

import zlib
from pathlib import Path

import lightning as L
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from razzle.model.samples import SampleFileError, Samples, shard_paths


class SampleDataset(Dataset):
    """Batches of samples; with `mirror`, each sample is left-right mirrored with
    probability 1/2 (a true symmetry of the game)."""

    def __init__(self, samples: Samples, mirror: bool = False):
        self.samples = samples
        self.mirror = mirror

    def __len__(self) -> int:
        return len(self.samples)

    def __getitems__(self, indices: list[int]) -> Samples:
        batch = self.samples[torch.as_tensor(indices, dtype=torch.int64)]
        if self.mirror:
            batch = batch.mirrored(where=torch.rand(len(batch)) < 0.5)
        return batch

    def __getitem__(self, index: int) -> Samples:
        return self.__getitems__([index])


class WindowDraws(Sampler[int]):
    """`count` indices into a window of `size` samples: whole random permutations of the
    window one after another, the last one cut short, so that every sample is drawn
    count / size times, give or take one. Seeded, so that every DDP process draws the same
    list (Lightning hands each its share of it)."""

    def __init__(self, size: int, count: int, seed: int):
        if size < 1 or count < 1:
            raise ValueError(f"a window draw needs a window and a count >= 1, got {size} and {count}")
        self.size, self.count, self.seed = size, count, seed

    def __len__(self) -> int:
        return self.count

    def __iter__(self):
        generator = torch.Generator().manual_seed(self.seed)
        passes = -(-self.count // self.size)
        order = torch.cat([torch.randperm(self.size, generator=generator) for _ in range(passes)])
        return iter(order[: self.count].tolist())


def keep_batch(batch: Samples) -> Samples:
    """The collate function: `__getitems__` already made the batch."""
    return batch


class SampleDataModule(L.LightningDataModule):
    """Train and validation batches from the ``*.pt`` shards in `dir`.

    val_fraction: share of samples held out for validation, chosen per shard from its
        name and `seed`, so a sample stays on its side as the window moves (0: none).
    max_samples: keep only the newest samples (the last shards in name order).
    require_search_value: refuse shards without search values (set when the loss's value
        target reads them, `razzle.model.samples`).
    train_draws: samples drawn per training epoch (`WindowDraws`); None: one pass over
        the window. The training loop sets it per iteration.
    """

    def __init__(
        self,
        dir: str,
        batch_size: int = 512,
        val_fraction: float = 0.05,
        mirror: bool = True,
        max_samples: int | None = None,
        num_workers: int = 0,
        seed: int = 0,
        require_search_value: bool = False,
    ):
        super().__init__()
        if batch_size < 1:
            raise ValueError(f"data.batch_size must be >= 1, got {batch_size}")
        if not 0 <= val_fraction < 1:
            raise ValueError(f"data.val_fraction must be in [0, 1), got {val_fraction}")
        self.dir = Path(dir)
        self.batch_size = batch_size
        self.val_fraction = val_fraction
        self.mirror = mirror
        self.max_samples = max_samples
        self.num_workers = num_workers
        self.seed = seed
        self.require_search_value = require_search_value
        self.train_draws: int | None = None
        self.train_samples: Samples | None = None
        self.val_samples: Samples | None = None
        self.newest_train_samples = 0
        self._shard_count = 0

    def load_window(self) -> None:
        """Read the newest `max_samples` samples of the directory's shards."""
        if not self.dir.is_dir():
            raise SampleFileError(f"sample directory {self.dir} does not exist (set data.dir)")
        paths = shard_paths(self.dir)
        if not paths:
            raise SampleFileError(f"no sample shards (*.pt) in {self.dir}")
        train, val, kept = [], [], 0
        for path in reversed(paths):
            if self.max_samples is not None and kept >= self.max_samples:
                break
            shard = Samples.load(path, require_search_value=self.require_search_value)
            if self.max_samples is not None:
                shard = shard[max(0, len(shard) - (self.max_samples - kept)) :]
            kept += len(shard)
            held_out = self._held_out(str(path.relative_to(self.dir)), len(shard))
            train.append(shard[~held_out])
            val.append(shard[held_out])
        self.train_samples = Samples.cat(train[::-1])
        self.val_samples = Samples.cat(val[::-1])
        self.newest_train_samples = len(train[0])
        self._shard_count = len(paths)
        if not len(self.train_samples):
            raise SampleFileError(
                f"the shards in {self.dir} leave no training samples (val_fraction={self.val_fraction})"
            )

    def _held_out(self, shard_name: str, count: int) -> torch.Tensor:
        generator = torch.Generator().manual_seed(zlib.crc32(shard_name.encode()) + self.seed)
        return torch.rand(count, generator=generator) < self.val_fraction

    def _loader(self, samples: Samples, train: bool) -> DataLoader:
        draws = None
        if train and self.train_draws is not None:
            # The seed changes as shards arrive, so each iteration draws afresh, and a resumed
            # run draws what it would have.
            draws = WindowDraws(len(samples), self.train_draws, self.seed * 1_000_003 + self._shard_count)
        return DataLoader(
            SampleDataset(samples, mirror=self.mirror and train),
            batch_size=self.batch_size,
            shuffle=train and draws is None,
            sampler=draws,
            drop_last=train and len(samples) > self.batch_size and draws is None,
            collate_fn=keep_batch,
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
        )

    def train_dataloader(self) -> DataLoader:
        if self.train_samples is None:
            self.load_window()
        return self._loader(self.train_samples, train=True)

    def val_dataloader(self) -> DataLoader:
        if self.val_samples is None:
            self.load_window()
        return self._loader(self.val_samples, train=False)
