"""Benchmark: training samples/s through Lightning against a plain PyTorch loop.

Both loops do identical work per step (the same DataLoader, `AlphaZeroModule.measure`
for forward, loss and metrics, backward, optimizer step), so the ratio is what the
Lightning machinery costs. They run alternately, round after round, in one process;
rates are medians over the rounds, the ratio is the median of the per-round ratios, and
warm-up steps are not timed.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time

import lightning as L
import torch

from razzle.cli.arguments import nonnegative_int, positive_int
from razzle.model.network import MODEL_SIZES, RazzleNet, parameter_count
from razzle.model.samples import Samples, random_play_samples
from razzle.train.data import SampleDataModule
from razzle.train.module import AlphaZeroModule


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", choices=list(MODEL_SIZES), default="small")
    parser.add_argument("--batch-size", type=positive_int, default=512)
    parser.add_argument("--steps", type=positive_int, default=20, help="timed steps per round")
    parser.add_argument("--warmup", type=nonnegative_int, default=3, help="untimed steps before each round")
    parser.add_argument("--rounds", type=positive_int, default=3)
    parser.add_argument("--seed", type=int, default=0)


class _StepClock(L.Callback):
    """Times the steps after the warm-up, from the end of one batch to the end of another."""

    def __init__(self, warmup: int):
        self.warmup = warmup
        self.start = self.end = 0.0

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        now = time.perf_counter()
        if trainer.global_step == self.warmup:
            self.start = now
        self.end = now


def _module(model: str, seed: int) -> AlphaZeroModule:
    torch.manual_seed(seed)
    return AlphaZeroModule(RazzleNet.of_size(model))


def _plain_round(args, datamodule: SampleDataModule) -> float:
    module = _module(args.model, args.seed)
    module.train()
    optimizer = module.configure_optimizers()
    metrics = module.train_metrics
    start = time.perf_counter()
    for done, batch in enumerate(datamodule.train_dataloader(), start=1):
        loss = module.measure(batch, metrics)["loss_total"]
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if done == args.warmup:
            start = time.perf_counter()
    elapsed = time.perf_counter() - start
    metrics.reset()
    return args.steps * args.batch_size / elapsed


def _lightning_round(args, datamodule: SampleDataModule) -> float:
    clock = _StepClock(args.warmup)
    trainer = L.Trainer(
        accelerator="cpu",
        devices=1,
        max_steps=args.warmup + args.steps,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        limit_val_batches=0,
        callbacks=[clock],
    )
    trainer.fit(_module(args.model, args.seed), datamodule=datamodule)
    return args.steps * args.batch_size / (clock.end - clock.start)


def run(args: argparse.Namespace) -> dict:
    print(f"playing {args.batch_size} random games for samples ...", flush=True)
    # One epoch covers a whole round, so no epoch boundary falls inside the timed steps.
    samples = Samples.cat([random_play_samples(args.batch_size, seed=args.seed)] * (args.warmup + args.steps))
    with tempfile.TemporaryDirectory() as directory:
        samples.save(f"{directory}/samples.pt")
        datamodule = SampleDataModule(directory, batch_size=args.batch_size, val_fraction=0.0)
        plain, lightning = [], []
        for round_index in range(args.rounds):
            plain.append(_plain_round(args, datamodule))
            lightning.append(_lightning_round(args, datamodule))
            print(
                f"round {round_index + 1}/{args.rounds}: plain {plain[-1]:.0f} samples/s, "
                f"lightning {lightning[-1]:.0f} samples/s",
                flush=True,
            )
    plain_rate, lightning_rate = statistics.median(plain), statistics.median(lightning)
    # Rounds run back to back, so the ratio within a round is robust to load that drifts.
    ratio = statistics.median(mine / theirs for mine, theirs in zip(lightning, plain))
    return {
        "target": "train",
        "model": args.model,
        "parameters": parameter_count(RazzleNet.of_size(args.model)),
        "batch_size": args.batch_size,
        "threads": torch.get_num_threads(),
        "plain_samples_per_s": round(plain_rate, 1),
        "lightning_samples_per_s": round(lightning_rate, 1),
        "lightning_over_plain": round(ratio, 4),
        "lightning_overhead_percent": round((1 - ratio) * 100, 2),
    }
