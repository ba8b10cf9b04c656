"""The training plan's targets and red flags: the config, its checks, the status rule, and
what a real server process reports for them."""

from __future__ import annotations

import pytest

from razzle.metric_targets import DEFAULT_TARGETS, Band, TargetsError, load_targets, parse_targets


def test_the_default_config_is_the_training_plans_tables():
    targets = load_targets(DEFAULT_TARGETS)
    table = {
        (p.name, p.first_iteration, p.last_iteration): {b.metric: (b.target, b.red_flag) for b in p.bands}
        for p in targets.phases
    }
    assert table == {
        ("early", 0, 9): {"illegal_penalty": (0.3, 0.8), "policy_loss": (5.0, 6.0), "legal_mass": (0.8, 0.5)},
        ("mid", 10, 49): {
            "policy_top1_accuracy": (0.25, 0.15),
            "value_std": (0.3, 0.2),
            "value_calibration_error": (0.3, 0.4),
        },
        ("late", 50, None): {
            "policy_top1_accuracy": (0.4, 0.3),
            "policy_loss": (2.5, 3.5),
            "value_calibration_error": (0.15, 0.25),
        },
    }


@pytest.mark.parametrize(
    ("band", "value", "status"),
    [
        (Band("policy_loss", 5.0, 6.0), 4.9, "ok"),
        (Band("policy_loss", 5.0, 6.0), 5.0, "watch"),
        (Band("policy_loss", 5.0, 6.0), 6.0, "watch"),
        (Band("policy_loss", 5.0, 6.0), 6.1, "red_flag"),
        (Band("legal_mass", 0.8, 0.5), 0.9, "ok"),
        (Band("legal_mass", 0.8, 0.5), 0.6, "watch"),
        (Band("legal_mass", 0.8, 0.5), 0.4, "red_flag"),
    ],
)
def test_a_value_is_ok_beyond_its_target_a_red_flag_beyond_the_flag_and_watch_between(band, value, status):
    assert band.status(value) == status


def test_assess_looks_at_the_phase_of_the_iteration_and_skips_what_was_not_measured():
    targets = load_targets()
    metrics = {"policy_top1_accuracy": 0.35, "policy_loss": 4.0, "value_calibration_error": float("nan")}
    assert [(m["metric"], m["phase"], m["status"]) for m in targets.assess(12, metrics)] == [
        ("policy_top1_accuracy", "mid", "ok")
    ]
    assert [(m["metric"], m["status"]) for m in targets.assess(60, metrics)] == [
        ("policy_top1_accuracy", "watch"),
        ("policy_loss", "red_flag"),
    ]


def one_phase(metrics: dict, first_iteration: int = 0) -> dict:
    return {"phases": {"a": {"first_iteration": first_iteration, "metrics": metrics}}}


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        ({}, "needs a non-empty mapping `phases"),
        (one_phase({"policy_loss": {"target": 1, "red_flag": 2}}, first_iteration=3), "start at iteration 0"),
        ({"phases": {"a": {"metrics": {}}}}, "first_iteration"),
        (one_phase({"loss_totl": {"target": 1, "red_flag": 2}}), "'loss_totl' is not a known metric"),
        (one_phase({"policy_loss": {"target": 1}}), "finite numbers"),
        (one_phase({"policy_loss": {"target": 1, "red_flag": 1}}), "equals its red flag"),
    ],
    ids=["no-phases", "late-start", "no-first-iteration", "unknown-metric", "no-red-flag", "target-is-flag"],
)
def test_a_malformed_config_is_one_error_naming_the_problem(raw, problem):
    with pytest.raises(TargetsError, match=problem):
        parse_targets(raw)


def test_a_missing_or_broken_file_names_itself(tmp_path):
    with pytest.raises(TargetsError, match="does not exist"):
        load_targets(tmp_path / "nope.yaml")
    broken = tmp_path / "broken.yaml"
    broken.write_text("phases: [unclosed\n")
    with pytest.raises(TargetsError, match=f"{broken} is not a readable YAML file"):
        load_targets(broken)


def test_the_server_serves_the_targets_and_assesses_each_runs_latest_iteration(shared_server):
    with shared_server.client() as client:
        phases = client.get("/training/targets").json()["phases"]
        assert [(p["name"], p["first_iteration"], p["last_iteration"]) for p in phases] == [
            ("early", 0, 9),
            ("mid", 10, 49),
            ("late", 50, None),
        ]
        for iteration, accuracy in ((1, 0.05), (11, 0.2)):
            metrics = {"policy_top1_accuracy": accuracy, "illegal_penalty": 0.9, "value_std": 0.35}
            body = {"run": "plan-check", "iteration": iteration, "metrics": metrics}
            client.post("/training/metrics", json=body).raise_for_status()
        summary = client.get("/training/dashboard").json()
    [run] = [r for r in summary["targets"] if r["run"] == "plan-check"]
    assert run["iteration"] == 11
    assert {m["metric"]: (m["phase"], m["value"], m["status"]) for m in run["metrics"]} == {
        "policy_top1_accuracy": ("mid", 0.2, "watch"),
        "value_std": ("mid", 0.35, "ok"),
    }
