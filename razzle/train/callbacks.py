"""Callbacks of the training run."""

from __future__ import annotations

from pathlib import Path

import lightning as L

from razzle.model.io import save_model_file


class ExportModel(L.Callback):
    """After every `every_n_epochs` training epochs, write the network as a model file
    (`razzle.model.io`): ``epoch_XXXX.pt`` and ``latest.pt`` in `dirpath`, loadable
    without Hydra or Lightning by play, serve and self-play workers."""

    def __init__(self, dirpath: str, every_n_epochs: int = 1):
        if every_n_epochs < 1:
            raise ValueError(f"every_n_epochs must be >= 1, got {every_n_epochs}")
        self.dirpath = Path(dirpath)
        self.every_n_epochs = every_n_epochs

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        epoch = trainer.current_epoch + 1
        if epoch % self.every_n_epochs or not trainer.is_global_zero:
            return
        metadata = {"epoch": epoch, "global_step": trainer.global_step}
        save_model_file(pl_module.net, self.dirpath / f"epoch_{epoch:04d}.pt", metadata)
        save_model_file(pl_module.net, self.dirpath / "latest.pt", metadata)
