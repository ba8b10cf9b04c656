"""The training plan's targets and red flags in the run's log, from the composed config."""

import logging

from hydra import compose, initialize_config_dir
from hydra.utils import instantiate

from razzle.train.handlers import TargetsLog
from razzle.train.report import IterationReport
from tests.train.test_config import CONF


def report(iteration: int, **heldout: float) -> IterationReport:
    return IterationReport(
        iteration=iteration,
        heldout=heldout,
        games={},
        training={},
        evaluation={},
        reliability={},
        model_path="models/iter.pt",
        epoch=0,
        global_step=0,
        lr=1e-3,
        selfplay_seconds=1.0,
        training_seconds=1.0,
        evaluation_seconds=1.0,
    )


def targets_log() -> TargetsLog:
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose(config_name="train", overrides=["paths.output_dir=unused"])
    return instantiate(cfg.handlers.targets)


def test_each_iteration_logs_its_phase_statuses(caplog):
    handler = targets_log()
    with caplog.at_level(logging.INFO, logger="razzle.train.handlers"):
        handler.on_iteration(report(3, illegal_penalty=0.1, policy_loss=5.5, legal_mass=0.4))
    (record,) = caplog.records
    assert record.levelno == logging.WARNING  # a red flag among them
    assert record.getMessage() == (
        "iteration 3 (early): illegal_penalty 0.1 ok, "
        "policy_loss 5.5 watch (target < 5, red flag at 6), "
        "legal_mass 0.4 RED FLAG (target > 0.8, red flag at 0.5)"
    )


def test_a_phase_without_measured_metrics_logs_nothing(caplog):
    with caplog.at_level(logging.INFO, logger="razzle.train.handlers"):
        targets_log().on_iteration(report(12, loss_total=1.0))
    assert caplog.records == []
