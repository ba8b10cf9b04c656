"""Build a training run from a composed Hydra config and run it (`train.py` calls this):
the self-play loop (`loop`, conf/selfplay/default.yaml), or with `selfplay=none` one fit
on a fixed directory of sample shards."""

from __future__ import annotations

from pathlib import Path

import lightning as L
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from razzle.train.handlers import LoggerHandler
from razzle.train.loop import LoopError
from razzle.train.module import AlphaZeroModule


def _instantiate_group(group: DictConfig | None) -> list:
    """Loggers, callbacks and handlers are dictionaries of named configs (any entry may be null)."""
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
    module = build_module(cfg)
    # A value target that reads search values refuses shards written without them.
    return module, instantiate(cfg.data, require_search_value=module.loss.uses_search_value), trainer


def checkpoint_to_resume(cfg: DictConfig) -> str | None:
    """`resume=<run dir>` continues from that run's last checkpoint; else `ckpt_path`."""
    if not cfg.get("resume"):
        return cfg.get("ckpt_path")
    checkpoint = Path(cfg.resume) / "checkpoints" / "last.ckpt"
    if not checkpoint.is_file():
        raise FileNotFoundError(f"resume={cfg.resume}: no checkpoint at {checkpoint} (is it a run folder?)")
    return str(checkpoint)


def train(cfg: DictConfig) -> dict[str, float]:
    """Run the loop (or fit, with `selfplay=none`), resuming when asked; returns the last
    logged metrics."""
    if torch.cuda.is_available():
        torch.set_float32_matmul_precision("high")
    if cfg.get("loop") is not None and cfg.get("ckpt_path"):
        raise LoopError(
            "ckpt_path starts a fit from a checkpoint (selfplay=none); the self-play loop continues a run with "
            "resume=<run dir>"
        )
    checkpoint = checkpoint_to_resume(cfg) if cfg.get("loop") is None else None
    module, datamodule, trainer = build_run(cfg)
    for logger in trainer.loggers:
        logger.log_hyperparams(OmegaConf.to_container(cfg, resolve=True))
    if cfg.get("loop") is None:
        trainer.fit(module, datamodule=datamodule, ckpt_path=checkpoint)
    else:
        handlers = [LoggerHandler(trainer.loggers), *_instantiate_group(cfg.get("handlers"))]
        loop = instantiate(cfg.loop)
        loop.run(trainer, module, datamodule, handlers, resume=bool(cfg.get("resume")))
    return {name: float(value) for name, value in trainer.callback_metrics.items()}
