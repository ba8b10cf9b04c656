"""`razzle calibration` on constructed positions whose values and outcomes are known."""

import json
import math
import subprocess
import sys

import pytest
import torch
from torch import nn

from razzle.analysis.calibration import analyse
from razzle.cli import main
from razzle.game.actions import NUM_ACTIONS
from razzle.model.io import save_model_file
from razzle.model.network import RazzleNet
from razzle.model.planes import PLANE_NAMES
from razzle.model.samples import Samples

TURN_PLANE = PLANE_NAMES.index("turn_limit")
SQUARES = 56

# (network value v, outcome z, turn): the table below is worked out by hand from these.
POSITIONS = [
    (0.9, 1.0, 2),
    (0.9, 1.0, 4),
    (0.9, -1.0, 30),  # confidently wrong
    (0.3, 0.0, 10),
    (0.3, 1.0, 22),
    (-0.7, -1.0, 41),
    (-0.7, 1.0, 45),  # confidently wrong
    (-0.1, 0.0, 8),
]


# The search's root value q of each position: half its outcome, so q's figures are as
# easy to work out by hand.
SEARCH_SHARE = 0.5


def value_network() -> RazzleNet:
    """A network whose value is tanh(x - 1), x = the turn-limit plane's (uniform) value:
    one channel passes that plane through; the value head averages it."""
    network = RazzleNet(channels=1, blocks=0)
    with torch.no_grad():
        for parameter in network.parameters():
            parameter.zero_()
        for module in network.modules():
            if isinstance(module, nn.BatchNorm2d):  # identity in eval mode
                module.weight.fill_(1)
                module.running_mean.zero_()
                module.running_var.fill_(1 - module.eps)
        network.stem[0][0].weight[0, TURN_PLANE, 1, 1] = 1
        head = network.value_head
        head.body[0][0].weight[0, 0] = 1
        head.body[3].weight[0, :SQUARES] = 1 / SQUARES
        head.out.weight[0, 0] = 1
        head.out.bias.fill_(-1)
    return network.eval()


def constructed_samples() -> Samples:
    n = len(POSITIONS)
    planes = torch.zeros(n, len(PLANE_NAMES), 8, 7)
    for row, (v, _, _) in enumerate(POSITIONS):
        planes[row, TURN_PLANE] = math.atanh(v) + 1
    legal = torch.zeros(n, NUM_ACTIONS, dtype=torch.bool)
    legal[:, 0] = True
    return Samples(
        planes=planes,
        legal=legal,
        policy=legal.float(),
        value=torch.tensor([z for _, z, _ in POSITIONS]),
        difficulty=torch.zeros(n),
        turn=torch.tensor([t for _, _, t in POSITIONS]),
        search_value=SEARCH_SHARE * torch.tensor([z for _, z, _ in POSITIONS]),
    )


@pytest.fixture
def model_and_replay(tmp_path):
    model = save_model_file(value_network(), tmp_path / "run" / "models" / "iter_0003.pt")
    constructed_samples().save(tmp_path / "held-out" / "iter_0004" / "samples.pt")
    return model, tmp_path / "held-out"


def test_the_constructed_network_has_the_intended_values():
    values = value_network()(constructed_samples().planes).value
    assert values.tolist() == pytest.approx([v for v, _, _ in POSITIONS], abs=1e-5)


def check_hand_worked_report(report: dict) -> None:
    bins = {index: b for index, b in enumerate(report["bins"]) if b["count"]}
    # Bins of width 0.2 over [-1, 1]: 0.9 in bin 9, 0.3 in 6, -0.1 in 4, -0.7 in 1.
    assert {i: b["count"] for i, b in bins.items()} == {1: 2, 4: 1, 6: 2, 9: 3}
    expected = {1: (-0.7, 0.0), 4: (-0.1, 0.0), 6: (0.3, 0.5), 9: (0.9, 1 / 3)}
    for index, (mean_value, mean_outcome) in expected.items():
        assert bins[index]["mean_value"] == pytest.approx(mean_value, abs=2e-3)
        assert bins[index]["mean_outcome"] == pytest.approx(mean_outcome)
    assert bins[9]["low"] == 0.8 and bins[9]["high"] == 1.0
    assert report["bins"][0]["mean_value"] is None  # an empty bin has no means
    # |mean v - mean z| per bin, weighted: (3 * 0.5667 + 2 * 0.2 + 2 * 0.7 + 0.1) / 8.
    assert report["calibration_error"] == pytest.approx(0.45, abs=2e-3)
    # Squared errors sum to 7.2: MSE 0.9; the outcomes' variance is 0.75 - 0.25^2 = 0.6875.
    assert report["value_mse"] == pytest.approx(0.9, abs=5e-3)
    assert report["value_skill"] == pytest.approx(1 - 0.9 / 0.6875, abs=1e-2)
    assert report["brier"] == pytest.approx(0.225, abs=2e-3)
    assert report["brier_uncertainty"] == pytest.approx(0.6875 / 4)
    assert report["brier_reliability"] == pytest.approx(2.0333 / 32, abs=1e-3)
    assert report["brier_resolution"] == pytest.approx(1 / 96)
    assert report["brier_within_bin"] == pytest.approx(0, abs=1e-3)  # v is constant inside each bin
    assert report["confident_share"] == 5 / 8
    assert report["confidently_wrong"] == 2 / 8
    phases = [(p["first_turn"], p["last_turn"], p["count"]) for p in report["phases"]]
    assert phases == [(0, 19, 4), (20, 39, 2), (40, 59, 2)]
    early, middle, late = report["phases"]
    assert early["value_mse"] == pytest.approx(0.03, abs=2e-3) and early["value_skill"] == pytest.approx(0.88, abs=1e-2)
    assert early["calibration_error"] == pytest.approx(0.15, abs=2e-3) and early["confidently_wrong"] == 0
    assert middle["calibration_error"] == pytest.approx(1.3, abs=2e-3) and middle["confidently_wrong"] == 0.5
    assert middle["value_skill"] == pytest.approx(-1.05, abs=1e-2)
    assert late["value_mse"] == pytest.approx(1.49, abs=5e-3) and late["value_skill"] == pytest.approx(-0.49, abs=1e-2)


def check_search_value_figures(report: dict) -> None:
    """q = z / 2: squared errors z^2 / 4 sum to 1.5 over 8 positions (MSE 0.1875 against the
    outcomes' variance 0.6875); bins at q = 0.5 (4 positions, mean z 1), -0.5 (2, -1) and
    0 (2, 0) miss by 0.5, 0.5 and 0."""
    assert report["search_value_skill"] == pytest.approx(1 - 0.1875 / 0.6875)
    assert report["search_calibration_error"] == pytest.approx((4 * 0.5 + 2 * 0.5) / 8)
    assert {b["count"] for b in report["search_bins"] if b["count"]} == {4, 2}
    # Per phase: outcomes (1, 1, 0, 0): MSE 0.125, variance 0.25; (-1, 1) twice: 0.25 and 1.
    assert [p["search_value_skill"] for p in report["phases"]] == pytest.approx([0.5, 0.75, 0.75])


def test_analyse_hand_worked_example():
    values = torch.tensor([v for v, _, _ in POSITIONS])
    samples = constructed_samples()
    check_hand_worked_report(analyse(values, samples.value, samples.turn).to_dict())
    report = analyse(values, samples.value, samples.turn, search_value=samples.search_value).to_dict()
    check_hand_worked_report(report)
    check_search_value_figures(report)


def test_calibration_command_on_a_replay_folder(model_and_replay, tmp_path):
    model, replay = model_and_replay
    out = tmp_path / "report"
    result = subprocess.run(
        [sys.executable, "-m", "razzle", "calibration", str(model), "--replay", str(replay), "--out", str(out)],
        capture_output=True, text=True, timeout=1800,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    report = json.loads(lines[-1])
    check_hand_worked_report(report)
    check_search_value_figures(report)
    assert report["positions"] == len(POSITIONS)
    assert "[+0.8, +1.0)       3    0.900    0.333" in result.stdout
    assert "the search's root value q on the same positions: calibration error 0.375   skill 0.727" in result.stdout
    assert (out / "reliability.png").stat().st_size > 0
    assert json.loads((out / "calibration.json").read_text()) == report
    assert "warning" not in result.stderr  # another run's replay: held out


def test_calibration_warns_about_positions_the_model_trained_on(tmp_path, capsys):
    model = save_model_file(value_network(), tmp_path / "run" / "models" / "iter_0003.pt")
    constructed_samples().save(tmp_path / "run" / "replay" / "iter_0002" / "samples.pt")
    constructed_samples()[:3].save(tmp_path / "run" / "replay" / "iter_0004" / "samples.pt")
    run = tmp_path / "run"  # a run folder stands for its replay/ (its models are no shards)
    assert main(["calibration", str(model), "--replay", str(run), "--out", str(tmp_path / "o")]) == 0
    captured = capsys.readouterr()
    assert "has trained on 1 of these shards (iter_0002...)" in captured.err
    assert json.loads(captured.out.strip().splitlines()[-1])["positions"] == len(POSITIONS) + 3


def test_shards_older_than_search_values_give_the_value_alone(model_and_replay, tmp_path, capsys):
    model, replay = model_and_replay
    shard = replay / "iter_0004" / "samples.pt"
    payload = torch.load(shard, weights_only=False)
    del payload["samples"]["search_value"]
    torch.save(payload, shard)
    assert main(["calibration", str(model), "--replay", str(replay), "--out", str(tmp_path / "o")]) == 0
    out = capsys.readouterr().out
    report = json.loads(out.strip().splitlines()[-1])
    check_hand_worked_report(report)  # their outcome stands in for q: it must not be reported as q
    assert report["search_value_skill"] is None and report["search_bins"] is None
    assert "the search's root value q: not recorded with these positions" in out


def test_calibration_on_fresh_games(tmp_path, capsys):
    rules = {"max_turns": 12, "repetition_draw": True}
    model = save_model_file(RazzleNet(channels=4, blocks=1), tmp_path / "m.pt", {"rules": rules})
    assert main(["calibration", str(model), "--games", "2", "--simulations", "2", "--out", str(tmp_path / "o")]) == 0
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert report["positions"] == sum(b["count"] for b in report["bins"]) > 0
    assert report["source"].startswith("2 fresh self-play games")
    assert all(p["last_turn"] < 20 for p in report["phases"])  # the model's rules: at most 12 turns
    assert sum(b["count"] for b in report["search_bins"]) == report["positions"]  # the games' own q, recorded


@pytest.mark.parametrize(
    "setup, message",
    [
        ("not_a_model", "is not a readable model file"),
        ("missing_replay", "does not exist"),
        ("empty_replay", "holds no sample shards"),
    ],
)
def test_bad_input_gets_one_clear_message(tmp_path, setup, message):
    model = save_model_file(value_network(), tmp_path / "model.pt")
    replay = tmp_path / "replay"
    if setup == "not_a_model":
        model = tmp_path / "notes.pt"
        model.write_text("not a model")
        constructed_samples().save(replay / "iter_0000" / "samples.pt")
    elif setup == "empty_replay":
        replay.mkdir()
    with pytest.raises(SystemExit) as raised:
        main(["calibration", str(model), "--replay", str(replay), "--out", str(tmp_path / "out")])
    assert str(raised.value).startswith("razzle calibration: ") and message in str(raised.value)
    assert not (tmp_path / "out").exists()
