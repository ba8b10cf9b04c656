"""Training and evaluation metrics as torchmetrics `Metric`s, under their canonical names.

The canonical names (`razzle.metric_names`) are used unchanged by the loggers, the metrics database, the
API and the dashboard; Lightning logs them as ``<stage>/<name>`` (``train/policy_loss``).
Every metric keeps sums and counts as state, so accumulating batch by batch (or across
processes) gives exactly the metric of the union of the batches. A metric with nothing
to average (e.g. no confident value yet) is NaN.

`learning_metrics()` gathers them all; its `update` takes

- ``logits`` [B, 897] network policy logits, ``legal`` [B, 897] bool,
  ``target_policy`` [B, 897] the search's visit distribution (all canonical);
- ``value`` [B] network value, ``outcome`` [B] game result z (side to move's view),
  ``search_value`` [B] the search's root value q of the position (same view);
- ``losses`` the dictionary of `CompositeLoss`, ``batch_size`` its number of samples;

computes the policy renormalised over legal actions (``legal_policy``) once, and hands
each metric the arguments its own `update` names.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torchmetrics import Metric, MetricCollection

from razzle.metric_names import LOSS_METRICS


CONFIDENT_VALUE = 0.5
CALIBRATION_BINS = 10


def _sum_state(metric: Metric, name: str, shape: tuple[int, ...] = ()) -> None:
    metric.add_state(name, default=torch.zeros(shape, dtype=torch.float64), dist_reduce_fx="sum")


def legal_probabilities(logits: torch.Tensor, legal: torch.Tensor) -> torch.Tensor:
    """The policy renormalised over the legal actions (zero elsewhere)."""
    return logits.float().masked_fill(~legal, float("-inf")).softmax(1)


class _MeanMetric(Metric):
    """Mean of a per-sample quantity that subclasses define in `per_sample`."""

    full_state_update = False

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        _sum_state(self, "total")
        _sum_state(self, "count")

    def _accumulate(self, per_sample: torch.Tensor) -> None:
        self.total += per_sample.double().sum()
        self.count += per_sample.numel()

    def compute(self) -> torch.Tensor:
        return self.total / self.count  # 0 / 0 = NaN: nothing measured yet


class PolicyAccuracy(_MeanMetric):
    """Share of positions where the search's most visited action is among the network's
    `top_k` legal actions (top-1: the network's legal argmax is it)."""

    def __init__(self, top_k: int = 1, **kwargs):
        super().__init__(**kwargs)
        self.top_k = top_k

    def update(self, legal_policy: torch.Tensor, target_policy: torch.Tensor) -> None:
        best = target_policy.argmax(1, keepdim=True)
        ranked = legal_policy.topk(self.top_k, 1).indices
        self._accumulate((ranked == best).any(1).float())


class PolicyEntropy(_MeanMetric):
    """Mean entropy (nats) of the policy renormalised over legal actions."""

    def update(self, legal_policy: torch.Tensor) -> None:
        self._accumulate(-torch.special.xlogy(legal_policy, legal_policy).sum(1))


class PolicyEBF(PolicyEntropy):
    """Effective branching factor: exp of the mean legal entropy (how many actions the
    policy spreads over)."""

    def compute(self) -> torch.Tensor:
        return super().compute().exp()


class PolicyConfidence(_MeanMetric):
    """Mean largest legal probability, renormalised over legal actions."""

    def update(self, legal_policy: torch.Tensor) -> None:
        self._accumulate(legal_policy.max(1).values)


class LegalMass(_MeanMetric):
    """Mean probability on legal actions before renormalising (1 = never proposes an illegal one)."""

    def update(self, logits: torch.Tensor, legal: torch.Tensor) -> None:
        self._accumulate((logits.float().softmax(1) * legal).sum(1))


class ValueMean(_MeanMetric):
    def update(self, value: torch.Tensor) -> None:
        self._accumulate(value)


class ValueExtremity(_MeanMetric):
    """Mean |v|: how far from "even" the network calls positions."""

    def update(self, value: torch.Tensor) -> None:
        self._accumulate(value.abs())


class ValueStd(Metric):
    """Standard deviation of v over all samples (population, not per batch)."""

    full_state_update = False

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        for name in ("total", "total_squares", "count"):
            _sum_state(self, name)

    def update(self, value: torch.Tensor) -> None:
        value = value.double()
        self.total += value.sum()
        self.total_squares += value.square().sum()
        self.count += value.numel()

    def compute(self) -> torch.Tensor:
        mean = self.total / self.count
        return (self.total_squares / self.count - mean.square()).clamp(min=0).sqrt()


class ValueConfidentAccuracy(_MeanMetric):
    """Where |v| > 0.5: share whose sign matches the outcome (a confident call on a draw
    counts as wrong)."""

    def update(self, value: torch.Tensor, outcome: torch.Tensor) -> None:
        confident = value.abs() > CONFIDENT_VALUE
        self._accumulate(((value * outcome)[confident] > 0).float())


class ValueCalibrationError(Metric):
    """Expected calibration error of v: equal-width bins of v over [-1, 1]; per bin
    |mean v - mean outcome|, weighted by the bin's share of samples.

    `reliability()` gives the per-bin data of a reliability diagram.
    """

    full_state_update = False

    def __init__(self, bins: int = CALIBRATION_BINS, **kwargs):
        super().__init__(**kwargs)
        self.bins = bins
        for name in ("count", "value_sum", "outcome_sum"):
            _sum_state(self, name, (bins,))

    def update(self, value: torch.Tensor, outcome: torch.Tensor) -> None:
        index = ((value.double() + 1) / 2 * self.bins).floor().long().clamp(0, self.bins - 1)
        self.count.index_add_(0, index, torch.ones_like(value, dtype=torch.float64))
        self.value_sum.index_add_(0, index, value.double())
        self.outcome_sum.index_add_(0, index, outcome.double())

    def compute(self) -> torch.Tensor:
        used = self.count > 0
        gap = (self.value_sum[used] - self.outcome_sum[used]).abs()  # = count * |mean v - mean z|
        return gap.sum() / self.count.sum()

    def reliability(self) -> dict[str, list[float]]:
        """Per bin: edges, mean v, mean outcome (NaN for empty bins) and count."""
        with self.sync_context():
            count = self.count.clone()
            value_sum, outcome_sum = self.value_sum.clone(), self.outcome_sum.clone()
        edges = torch.linspace(-1, 1, self.bins + 1, dtype=torch.float64)
        safe = count.clamp(min=1)
        empty = count == 0
        return {
            "bin_low": edges[:-1].tolist(),
            "bin_high": edges[1:].tolist(),
            "mean_value": (value_sum / safe).masked_fill(empty, float("nan")).tolist(),
            "mean_outcome": (outcome_sum / safe).masked_fill(empty, float("nan")).tolist(),
            "count": count.tolist(),
        }


class ValueSkill(Metric):
    """1 - MSE(v, z) / MSE of the constant mean-outcome predictor on the same samples (the
    outcomes' variance): > 0 where v beats always guessing the average result, 1 when perfect.
    NaN when the outcomes do not vary (the constant is perfect and the ratio undefined)."""

    full_state_update = False

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        for name in ("count", "outcome_sum", "outcome_squares", "squared_error"):
            _sum_state(self, name)

    def update(self, value: torch.Tensor, outcome: torch.Tensor) -> None:
        outcome = outcome.double()
        self.count += outcome.numel()
        self.outcome_sum += outcome.sum()
        self.outcome_squares += outcome.square().sum()
        self.squared_error += (value.double() - outcome).square().sum()

    def compute(self) -> torch.Tensor:
        mean = self.outcome_sum / self.count
        constant_error = self.outcome_squares / self.count - mean.square()
        if not constant_error > 1e-12:  # also NaN: no samples
            return torch.tensor(float("nan"), dtype=torch.float64, device=self.count.device)
        return 1 - self.squared_error / self.count / constant_error


class SearchValueSkill(ValueSkill):
    """`ValueSkill` of the search's root value q instead of the network's: what the search
    knew about the outcome of the same positions, the bar the value head could reach by
    learning from its own search. (Shards from before q was recorded carry z in its place,
    so on them it reads 1.)"""

    def update(self, search_value: torch.Tensor, outcome: torch.Tensor) -> None:
        super().update(search_value, outcome)


class LossTerm(_MeanMetric):
    """Sample-weighted mean of one term of the loss over the epoch."""

    def __init__(self, term: str, **kwargs):
        super().__init__(**kwargs)
        self.term = term

    def update(self, losses: Mapping[str, torch.Tensor], batch_size: int) -> None:
        self.total += losses[self.term].detach().double() * batch_size
        self.count += batch_size


class LearningMetrics(MetricCollection):
    """A collection whose `update` derives the legal policy once for all metrics."""

    def update(self, *, logits: torch.Tensor, legal: torch.Tensor, **kwargs) -> None:
        super().update(logits=logits, legal=legal, legal_policy=legal_probabilities(logits, legal), **kwargs)


def learning_metrics(prefix: str = "") -> LearningMetrics:
    """Every policy, value and loss metric of the canonical names, keyed by its name."""
    metrics = {
        "policy_top1_accuracy": PolicyAccuracy(top_k=1),
        "policy_top3_accuracy": PolicyAccuracy(top_k=3),
        "policy_entropy": PolicyEntropy(),
        "policy_ebf": PolicyEBF(),
        "policy_confidence": PolicyConfidence(),
        "legal_mass": LegalMass(),
        "value_mean": ValueMean(),
        "value_std": ValueStd(),
        "value_extremity": ValueExtremity(),
        "value_calibration_error": ValueCalibrationError(),
        "value_confident_accuracy": ValueConfidentAccuracy(),
        "value_skill": ValueSkill(),
        "search_value_skill": SearchValueSkill(),
        **{name: LossTerm(name) for name in LOSS_METRICS},
    }
    # Compute groups would merge metrics whose states happen to match after one batch.
    return LearningMetrics(metrics, prefix=prefix, compute_groups=False)
