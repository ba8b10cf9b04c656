"""The example cluster file is a valid Ray cluster-launcher config (the schema check Ray's
`ray up` runs first); launching it needs a cloud account and was never tried here."""

from pathlib import Path

import pytest
import yaml

pytest.importorskip("ray")
from ray.autoscaler._private.util import prepare_config, validate_config  # noqa: E402

CLUSTER_FILE = Path(__file__).resolve().parents[2] / "deploy" / "ray-cluster-aws.yaml"


def test_the_example_cluster_file_passes_rays_schema():
    config = prepare_config(yaml.safe_load(CLUSTER_FILE.read_text()))
    validate_config(config)
    assert config["head_node_type"] == "head"
    assert config["available_node_types"]["selfplay_gpu"]["min_workers"] == 4
    assert any("ray start --address=$RAY_HEAD_IP:6379" in command for command in config["worker_start_ray_commands"])
