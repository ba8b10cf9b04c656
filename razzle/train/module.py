"""`AlphaZeroModule`: the network, the composite loss, the optimizer and the metrics."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import lightning as L
import torch
from torchmetrics import MetricCollection

from razzle.model.network import RazzleNet
from razzle.model.samples import Samples
from razzle.train.loss import CompositeLoss
from razzle.train.metrics import learning_metrics

OptimizerFactory = Callable[..., torch.optim.Optimizer]


class AlphaZeroModule(L.LightningModule):
    """Trains `net` on `Samples` batches. Metrics are logged once per epoch as
    ``train/<canonical name>`` and ``val/<canonical name>``.

    optimizer: called with the parameters (a Hydra ``_partial_`` config); default Adam,
        lr 1e-3, weight decay 1e-4.

    The training loop continues one Trainer with a `fit` per iteration: the optimizer is
    made once (so Adam's moments carry over), and the last training epoch's metrics
    (`epoch_metrics`, canonical names) travel in the checkpoint for the iteration report.
    """

    def __init__(self, net: RazzleNet, loss: CompositeLoss | None = None, optimizer: OptimizerFactory | None = None):
        super().__init__()
        self.net = net
        self.loss = loss if loss is not None else CompositeLoss()
        self.optimizer_factory = optimizer or partial(torch.optim.Adam, lr=1e-3, weight_decay=1e-4)
        self.train_metrics = learning_metrics(prefix="train/")
        self.val_metrics = learning_metrics(prefix="val/")
        self.epoch_metrics: dict[str, float] = {}
        self._optimizer: torch.optim.Optimizer | None = None

    def forward(self, planes: torch.Tensor):
        return self.net(planes)

    def measure(self, batch: Samples, metrics: MetricCollection) -> dict[str, torch.Tensor]:
        """Forward pass and loss terms, accumulating `metrics`; shared by training, validation
        and the plain-PyTorch benchmark loop."""
        output = self.net(batch.planes)
        losses = self.loss(output, batch)
        metrics.update(
            logits=output.policy.detach(),
            legal=batch.legal,
            target_policy=batch.policy,
            value=output.value.detach(),
            outcome=batch.value,
            search_value=batch.search_value,
            losses=losses,
            batch_size=len(batch),
        )
        return losses

    def training_step(self, batch: Samples, batch_idx: int) -> torch.Tensor:
        losses = self.measure(batch, self.train_metrics)
        self.log("loss", losses["loss_total"].detach(), prog_bar=True, logger=False, batch_size=len(batch))
        if self.loss.adaptive:
            mass = self.trainer.strategy.reduce(losses["illegal_penalty"].detach(), reduce_op="mean")
            self.loss.update_multiplier(mass)
            self.log("train/illegal_multiplier", self.loss.illegal_multiplier, on_step=False, on_epoch=True)
        return losses["loss_total"]

    def validation_step(self, batch: Samples, batch_idx: int) -> None:
        self.measure(batch, self.val_metrics)

    def on_train_epoch_end(self) -> None:
        computed = self._log_epoch(self.train_metrics)
        if computed:
            self.epoch_metrics = {name.removeprefix("train/"): float(value) for name, value in computed.items()}

    def on_validation_epoch_end(self) -> None:
        self._log_epoch(self.val_metrics)

    def _log_epoch(self, metrics: MetricCollection) -> dict[str, torch.Tensor]:
        """Compute (synchronised across processes by torchmetrics) and log once per epoch;
        handing Lightning the metric objects instead costs a device move per metric and step."""
        computed = {}
        if any(metric.update_count for metric in metrics.values()):
            computed = metrics.compute()
            self.log_dict(computed)
        metrics.reset()
        return computed

    def configure_optimizers(self) -> torch.optim.Optimizer:
        if self._optimizer is None:
            self._optimizer = self.optimizer_factory(params=self.parameters())
        return self._optimizer

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        checkpoint["epoch_metrics"] = self.epoch_metrics

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        self.epoch_metrics = checkpoint.get("epoch_metrics", {})
