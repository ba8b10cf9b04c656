"""The DataModule over a directory of sample shards (the replay window).

Samples live in memory as one `Samples` of tensors; a batch is a single fancy index
(`__getitems__`), not 512 separate items stacked. The directory is read once, when the
first dataloader is asked for, and again whenever the training loop calls `load_window`
(after self-play has written an iteration), so each iteration trains on the newest window.
Under DDP Lightning gives every process its own share of the window (a distributed
sampler), so the processes train on disjoint samples of the same window.
"""

from __future__ import annotations

import zlib
from pathlib import Path

import lightning as L
import torch
from torch.utils.data import DataLoader, Dataset

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


def keep_batch(batch: Samples) -> Samples:
    """The collate function: `__getitems__` already made the batch."""
    return batch


class SampleDataModule(L.LightningDataModule):
    """Train and validation batches from the ``*.pt`` shards in `dir`.

    val_fraction: share of samples held out for validation, chosen per shard from its
        name and `seed`, so a sample stays on its side as the window moves (0: none).
    max_samples: keep only the newest samples (the last shards in name order).
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
        self.train_samples: Samples | None = None
        self.val_samples: Samples | None = None

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
            shard = Samples.load(path)
            if self.max_samples is not None:
                shard = shard[max(0, len(shard) - (self.max_samples - kept)) :]
            kept += len(shard)
            held_out = self._held_out(str(path.relative_to(self.dir)), len(shard))
            train.append(shard[~held_out])
            val.append(shard[held_out])
        self.train_samples = Samples.cat(train[::-1])
        self.val_samples = Samples.cat(val[::-1])
        if not len(self.train_samples):
            raise SampleFileError(
                f"the shards in {self.dir} leave no training samples (val_fraction={self.val_fraction})"
            )

    def _held_out(self, shard_name: str, count: int) -> torch.Tensor:
        generator = torch.Generator().manual_seed(zlib.crc32(shard_name.encode()) + self.seed)
        return torch.rand(count, generator=generator) < self.val_fraction

    def _loader(self, samples: Samples, train: bool) -> DataLoader:
        return DataLoader(
            SampleDataset(samples, mirror=self.mirror and train),
            batch_size=self.batch_size,
            shuffle=train,
            drop_last=train and len(samples) > self.batch_size,
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
