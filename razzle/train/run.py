"""Build a training run from a composed Hydra config and fit it (`train.py` calls this)."""

from __future__ import annotations

from pathlib import Path

import lightning as L
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from razzle.train.iteration import SelfPlayLoop
from razzle.train.module import AlphaZeroModule
from razzle.train.summary import summarize


def _instantiate_group(group: DictConfig | None) -> list:
    """Loggers and callbacks are dictionaries of named configs (any entry may be null)."""
    if not group:
        return []
    return [instantiate(entry) for entry in group.values() if entry is not None and "_target_" in entry]


def build_module(cfg: DictConfig) -> AlphaZeroModule:
    return AlphaZeroModule(net=instantiate(cfg.model), loss=instantiate(cfg.loss), optimizer=instantiate(cfg.optimizer))


def build_run(cfg: DictConfig) -> tuple[AlphaZeroModule, L.LightningDataModule, L.Trainer]:
    """Module, DataModule and Trainer with its loggers and callbacks, all from `_target_`s."""
    if cfg.get("seed") is not None:
        L.seed_everything(cfg.seed, workers=True)
    loggers = _instantiate_group(cfg.get("logger"))
    trainer = instantiate(cfg.trainer, callbacks=_instantiate_group(cfg.get("callbacks")), logger=loggers or False)
    return build_module(cfg), instantiate(cfg.data), trainer


def checkpoint_to_resume(cfg: DictConfig) -> str | None:
    """`resume=<run dir>` continues from that run's last checkpoint; else `ckpt_path`."""
    if not cfg.get("resume"):
        return cfg.get("ckpt_path")
    checkpoint = Path(cfg.resume) / "checkpoints" / "last.ckpt"
    if not checkpoint.is_file():
        raise FileNotFoundError(f"resume={cfg.resume}: no checkpoint at {checkpoint} (is it a run folder?)")
    return str(checkpoint)


def train(cfg: DictConfig) -> dict[str, float]:
    """Fit, resuming when asked; returns the last logged metrics."""
    if torch.cuda.is_available():
        torch.set_float32_matmul_precision("high")
    checkpoint = checkpoint_to_resume(cfg)
    module, datamodule, trainer = build_run(cfg)
    for logger in trainer.loggers:
        logger.log_hyperparams(OmegaConf.to_container(cfg, resolve=True))
    trainer.fit(module, datamodule=datamodule, ckpt_path=checkpoint)
    for callback in trainer.callbacks:
        if isinstance(callback, SelfPlayLoop) and trainer.is_global_zero:
            print(summarize(callback.history, Path(cfg.paths.output_dir)))
    return {name: float(value) for name, value in trainer.callback_metrics.items()}
