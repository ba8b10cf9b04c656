import json
import struct
import time
from pathlib import Path

import wandb
from hydra import compose, initialize_config_dir
from wandb.proto import wandb_internal_pb2

from razzle.train.run import train

CONF = Path(__file__).resolve().parents[2] / "conf"


def history(run_file: Path) -> tuple[list[dict], bool]:
    """History rows of an offline W&B run file (LevelDB-style log of protobuf records:
    7-byte file header, then records with a 7-byte header in 32 KiB blocks), and whether
    the run's exit record has been written."""
    data, block, position, pending, rows, finished = run_file.read_bytes(), 32768, 7, b"", [], False
    while position + 7 <= len(data):
        if block - position % block < 7:  # a block's tail too short for a header is padding
            position += block - position % block
            continue
        length, kind = struct.unpack("<HB", data[position + 4 : position + 7])
        pending += data[position + 7 : position + 7 + length]
        position += 7 + length
        if kind in (1, 4):  # a full record, or the last piece of one
            record = wandb_internal_pb2.Record()
            record.ParseFromString(pending)
            pending = b""
            finished |= record.WhichOneof("record_type") == "exit"
            if record.WhichOneof("record_type") == "history":
                rows.append({"/".join(i.nested_key) or i.key: json.loads(i.value_json) for i in record.history.item})
    return rows, finished


def finished_history(run_dir: Path, timeout: float = 60.0) -> list[dict]:
    """wandb's writer process may still be flushing when `wandb.finish()` returns."""
    deadline = time.monotonic() + timeout
    while True:
        run_files = list(run_dir.glob("offline-run-*/run-*.wandb"))
        if len(run_files) == 1:
            rows, finished = history(run_files[0])
            if finished or time.monotonic() > deadline:
                return rows
        elif time.monotonic() > deadline:
            raise AssertionError(f"expected one offline run in {run_dir}, found {run_files}")
        time.sleep(0.1)


def test_offline_wandb_run_records_the_metrics(tmp_path, monkeypatch, real_samples):
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    real_samples.save(tmp_path / "samples" / "000.pt")
    overrides = [
        f"paths.root_dir={tmp_path}",
        f"paths.output_dir={tmp_path / 'run'}",
        f"data.dir={tmp_path / 'samples'}",
        "experiment=smoke",
        "data.batch_size=16",
        "logger=wandb",
        "callbacks=none",
    ]
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose(config_name="train", overrides=overrides)
    metrics = train(cfg)
    wandb.finish()
    recorded = {}
    for row in finished_history(tmp_path / "run" / "wandb"):
        recorded.update(row)
    for name in ("train/policy_loss", "train/legal_mass", "val/value_calibration_error", "val/loss_total"):
        assert recorded[name] == metrics[name], name
