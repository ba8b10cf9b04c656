import subprocess
import sys
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate

from razzle.game import Rules
from razzle.model.io import load_model_file
from razzle.metric_names import LOSS_METRICS, POLICY_METRICS, VALUE_METRICS
from razzle.train.run import build_run, train

ROOT = Path(__file__).resolve().parents[2]
CONF = ROOT / "conf"


def names(group: str) -> list[str]:
    return sorted(path.stem for path in (CONF / group).glob("*.yaml"))


def compose_train(tmp_path: Path, *overrides: str):
    paths = [f"paths.root_dir={tmp_path}", f"paths.output_dir={tmp_path / 'run'}", f"data.dir={tmp_path / 'samples'}"]
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return compose(config_name="train", overrides=[*paths, *overrides])


@pytest.mark.parametrize("model", names("model"))
def test_every_model_config_builds(tmp_path, model):
    cfg = compose_train(tmp_path, f"model={model}")
    module, datamodule, trainer = build_run(cfg)
    assert module.net.architecture["channels"] == cfg.model.channels
    assert len(module.net.tower) == cfg.model.blocks
    assert datamodule.batch_size == 512 and trainer.max_epochs == cfg.trainer.max_epochs


@pytest.mark.parametrize("experiment", names("experiment"))
def test_every_experiment_config_builds(tmp_path, experiment):
    cfg = compose_train(tmp_path, f"experiment={experiment}")
    assert experiment in cfg.tags
    if cfg.trainer.accelerator == "gpu" and not torch.cuda.is_available():
        cfg.trainer.accelerator = "cpu"  # build the GPU presets here too, on the CPU
    module, datamodule, trainer = build_run(cfg)
    assert module.loss.weights["quartic"] == cfg.loss.quartic
    assert module.loss.illegal_mode == cfg.loss.illegal_mode


def test_experiments_change_what_they_promise(tmp_path):
    assert compose_train(tmp_path, "experiment=quartic").loss.quartic == 0.25
    assert compose_train(tmp_path, "experiment=adaptive_illegal").loss.illegal_mode == "adaptive"
    assert compose_train(tmp_path, "experiment=smoke").model.channels == 32


def test_default_config_matches_the_issue(tmp_path):
    cfg = compose_train(tmp_path)
    assert dict(cfg.loss) | {"_target_": None} == {
        "_target_": None,
        "policy": 1.0,
        "value": 1.0,
        "quartic": 0.0,
        "difficulty": 0.5,
        "illegal": 1.0,
        "illegal_mode": "fixed",
        "illegal_target": 0.01,
        "illegal_step": 0.1,
        "value_target": "mix",
        "value_target_mix": 0.75,
    }
    assert (cfg.selfplay.samples_per_position, cfg.selfplay.window_min) == (None, None)  # both off
    assert cfg.optimizer.lr == 0.001 and cfg.optimizer.weight_decay == 0.0001
    assert instantiate(cfg.rules) == Rules()


@pytest.mark.parametrize("logger", names("logger"))
def test_every_logger_config_builds(tmp_path, monkeypatch, logger):
    monkeypatch.setenv("WANDB_MODE", "offline")
    _, _, trainer = build_run(compose_train(tmp_path, f"logger={logger}"))
    expected = {"csv": 1, "tensorboard": 1, "wandb": 1, "many": 3}[logger]
    assert len(trainer.loggers) == expected


@pytest.mark.parametrize("trainer", ["gpu", "ddp"])
def test_accelerator_configs_compose(tmp_path, trainer):
    cfg = compose_train(tmp_path, f"trainer={trainer}")
    assert cfg.trainer.accelerator == "gpu" and cfg.trainer.precision == "bf16-mixed"
    assert cfg.trainer.get("strategy", "auto") == ("ddp" if trainer == "ddp" else "auto")


def test_cfg_job_prints_the_composed_config():
    result = subprocess.run(
        [sys.executable, "train.py", "--cfg", "job", "model=medium", "loss.quartic=0.25"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=1800,
    )
    assert result.returncode == 0, result.stderr
    assert "channels: 128" in result.stdout and "blocks: 10" in result.stdout
    assert "quartic: 0.25" in result.stdout


def test_train_on_samples_from_disk(tmp_path, real_samples):
    real_samples.save(tmp_path / "samples" / "000.pt")
    cfg = compose_train(
        tmp_path, "experiment=smoke", "selfplay=none", "trainer.max_epochs=2", "data.batch_size=16", "data.val_fraction=0.2"
    )
    metrics = train(cfg)
    for name in POLICY_METRICS + VALUE_METRICS + LOSS_METRICS:
        assert f"train/{name}" in metrics and f"val/{name}" in metrics, name
    network, metadata = load_model_file(tmp_path / "run" / "models" / "latest.pt")
    assert metadata["epoch"] == 2 and network.architecture["channels"] == 32
    header = next((tmp_path / "run" / "csv").glob("version_*/metrics.csv")).read_text().splitlines()[0]
    assert "train/policy_loss" in header.split(",")


def test_missing_sample_directory_is_one_clear_error(tmp_path):
    result = subprocess.run(
        [
            sys.executable,
            "train.py",
            "experiment=smoke",
            "selfplay=none",
            f"data.dir={tmp_path / 'nowhere'}",
            f"hydra.run.dir={tmp_path / 'run'}",
            "logger=csv",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=1800,
    )
    assert result.returncode == 1
    expected = f"error: sample directory {tmp_path / 'nowhere'} does not exist (set data.dir)"
    assert result.stderr.strip().splitlines()[-1] == expected
