from functools import partial

import lightning as L
import pytest
import torch

from razzle.model.network import RazzleNet
from razzle.train.data import SampleDataModule
from razzle.train.loss import CompositeLoss
from razzle.train.metrics import learning_metrics
from razzle.train.module import AlphaZeroModule


def evaluate(module: AlphaZeroModule, samples) -> dict[str, float]:
    module.eval()
    metrics = learning_metrics()
    with torch.no_grad():
        module.measure(samples, metrics)
    module.train()
    return {name: value.item() for name, value in metrics.compute().items()}


def fit(module, directory, steps: int, batch_size: int = 16) -> L.Trainer:
    trainer = L.Trainer(
        max_steps=steps,
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        limit_val_batches=0,
    )
    trainer.fit(module, SampleDataModule(str(directory), batch_size=batch_size, val_fraction=0.0, mirror=False))
    return trainer


def test_tiny_network_overfits_a_fixed_set_of_real_positions(tmp_path, real_samples):
    real_samples.save(tmp_path / "000.pt")
    samples = SampleDataModule(str(tmp_path)).train_dataloader().dataset.samples  # as stored
    L.seed_everything(0)
    module = AlphaZeroModule(RazzleNet.of_size("tiny"), optimizer=partial(torch.optim.Adam, lr=3e-3))
    before = evaluate(module, samples)
    fit(module, tmp_path, steps=100)
    after = evaluate(module, samples)
    assert before["legal_mass"] < 0.1 and after["legal_mass"] > 0.9
    # Cross-entropy cannot fall below the targets' own entropy; the gap above it must shrink.
    floor = -torch.special.xlogy(samples.policy, samples.policy).sum(1).mean().item()
    assert after["policy_loss"] - floor < 0.2 * (before["policy_loss"] - floor)
    assert after["value_loss"] < 0.25 * before["value_loss"]
    assert after["difficulty_loss"] < 0.8 * before["difficulty_loss"]
    assert after["policy_top1_accuracy"] > before["policy_top1_accuracy"]


def test_adaptive_illegal_multiplier_is_trained_and_logged(tmp_path, real_samples):
    real_samples.save(tmp_path / "000.pt")
    L.seed_everything(0)
    loss = CompositeLoss(illegal=1.0, illegal_mode="adaptive", illegal_step=0.5)
    trainer = fit(AlphaZeroModule(RazzleNet(channels=8, blocks=1), loss=loss), tmp_path, steps=8)
    # The illegal mass starts near 1, far above the 1% target, so the multiplier grew.
    assert loss.illegal_multiplier.item() > 1.0 + 8 * 0.5 * 0.5
    assert trainer.callback_metrics["train/illegal_multiplier"].item() > 1.0
    assert "train/legal_mass" in trainer.callback_metrics


def test_default_optimizer_is_adam_with_weight_decay():
    optimizer = AlphaZeroModule(RazzleNet(channels=8, blocks=1)).configure_optimizers()
    assert isinstance(optimizer, torch.optim.Adam)
    assert optimizer.defaults["lr"] == pytest.approx(1e-3)
    assert optimizer.defaults["weight_decay"] == pytest.approx(1e-4)
