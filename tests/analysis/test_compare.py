"""`razzle compare` on synthetic run folders laid out as `python train.py -m` writes them."""

import math
import subprocess
import sys

import pandas as pd
import pytest
from omegaconf import OmegaConf
from scipy import stats

from razzle.analysis.compare import (
    CompareError,
    compare,
    difference_interval,
    head_to_head,
    mean_interval,
)
from razzle.cli import main
from razzle.model.io import save_model_file
from razzle.model.network import RazzleNet

ITERATIONS = 15
REFERENCE, QUARTIC = "loss.quartic=0.0", "loss.quartic=0.25"


def write_run(folder, quartic, seed, calibration, top1, skill=True, models=False):
    """A run folder: Hydra's config (unresolved, as Hydra saves it) and overrides, and a
    metrics CSV with Lightning's per-epoch rows between the per-iteration ones."""
    hydra = folder / ".hydra"
    hydra.mkdir(parents=True)
    config = {
        "tags": ["quartic_sweep"],
        "seed": seed,
        "loss": {"value": 1.0, "quartic": quartic},
        "selfplay": {"iterations": ITERATIONS},
        "server": {"run": "quartic-${loss.quartic}-seed-${seed}", "url": None},
    }
    OmegaConf.save(OmegaConf.create(config), hydra / "config.yaml")
    overrides = [f"loss.quartic={quartic}", f"seed={seed}", "experiment=quartic_sweep"]
    OmegaConf.save(OmegaConf.create(overrides), hydra / "overrides.yaml")
    rows = []
    for i in range(ITERATIONS):
        rows.append({"epoch": i, "step": 10 * i + 5, "train/value_loss": 0.9})
        rows.append({"epoch": i, "step": 10 * i + 5, "val/value_loss": 1.0})
        metrics = {
            "iteration": i,
            "step": 10 * i + 6,
            "value_calibration_error": calibration[i],
            "value_std": 0.3,
            "value_loss": 1.0 + calibration[i],
            "value_loss_quartic": 0.5,
            "policy_top1_accuracy": top1[i],
            "lr": 0.001,
        }
        if i % 2 == 0 or i == ITERATIONS - 1:  # evaluated every other iteration and at the end
            metrics |= {"eval_random_win_rate": 1.0, "eval_mcts_win_rate": 0.3 + 0.04 * i}
        if skill:
            metrics["value_skill"] = -calibration[i]
        rows.append(metrics)
    csv = folder / "csv" / "version_0"
    csv.mkdir(parents=True)
    pd.DataFrame(rows).to_csv(csv / "metrics.csv", index=False)
    if models:
        rules = {"max_turns": 6, "repetition_draw": True}
        final = folder / "models" / f"iter_{ITERATIONS - 1:04d}.pt"
        save_model_file(RazzleNet(channels=4, blocks=1), final, {"rules": rules})
    return folder


def top1_curve(delay):
    return [0.105 + 0.03 * (i - delay) for i in range(ITERATIONS)]


def multirun(root, calibration_of, delay_of, **kwargs):
    """Six runs numbered like a Hydra sweep: quartic 0 and 0.25, seeds 0-2."""
    number = 0
    for quartic in (0.0, 0.25):
        for seed in range(3):
            top1 = top1_curve(delay_of(quartic, seed))
            write_run(root / str(number), quartic, seed, calibration_of(quartic, seed), top1, **kwargs)
            number += 1
    (root / "multirun.yaml").write_text("hydra: {}\n")
    return root


def known_difference(root):
    # quartic 0.25 is 0.15 better calibrated; seeds wobble by 0.01; it reaches top-1 0.4 two iterations later.
    return multirun(
        root,
        lambda quartic, seed: [(0.4 if quartic == 0 else 0.25) - 0.01 * (i - seed + 1) for i in range(ITERATIONS)],
        lambda quartic, seed: (0 if quartic == 0 else 2) + seed % 2,
    )


def no_difference(root):
    # The same curve in both arms; the seeds' offsets average to zero in each arm.
    offsets = {0.0: (-0.03, 0.0, 0.03), 0.25: (0.02, -0.02, 0.0)}
    return multirun(
        root,
        lambda quartic, seed: [0.4 - 0.01 * i + offsets[quartic][seed] for i in range(ITERATIONS)],
        lambda quartic, seed: seed % 2,
    )


def test_a_known_difference_is_found_with_an_interval_that_excludes_zero(tmp_path):
    comparison = compare([known_difference(tmp_path / "multirun")])
    assert [arm.label for arm in comparison.arms] == [REFERENCE, QUARTIC]  # seed and run name ignored
    assert [arm.seeds for arm in comparison.arms] == [["0", "1", "2"], ["0", "1", "2"]]
    assert comparison.iterations == list(range(15)) and comparison.last_third == [10, 11, 12, 13, 14]
    gap = comparison.differences["value_calibration_error"][QUARTIC]
    assert gap.mean == pytest.approx(-0.15) and gap.high < 0 and gap.excludes_zero
    assert comparison.differences["value_std"][QUARTIC].mean == 0
    assert comparison.speed == {REFERENCE: [10, 11, 10], QUARTIC: [12, 13, 12]}
    speed = comparison.speed_difference[QUARTIC]
    assert speed.mean == pytest.approx(2) and speed.low > 0
    assert comparison.criteria[QUARTIC]["no regression in policy learning speed"] is False
    # At iteration 14 calibration is 0.26 / 0.11 and top-1 0.515 / 0.455 (seed means).
    assert comparison.criteria[REFERENCE]["calibration error < 0.15"] is False
    assert comparison.criteria[QUARTIC]["calibration error < 0.15"] is True
    assert comparison.criteria[REFERENCE]["policy top-1 > 0.4"] is True
    assert comparison.criteria[QUARTIC]["policy top-1 > 0.4"] is True
    assert comparison.criteria[REFERENCE]["no regression in policy learning speed"] is None


def test_no_difference_gives_an_interval_that_includes_zero(tmp_path):
    comparison = compare([no_difference(tmp_path / "multirun")])
    gap = comparison.differences["value_calibration_error"][QUARTIC]
    assert gap.mean == pytest.approx(0, abs=1e-12) and gap.low < 0 < gap.high and not gap.excludes_zero
    assert not comparison.speed_difference[QUARTIC].excludes_zero
    assert comparison.criteria[QUARTIC]["no regression in policy learning speed"] is True


def test_per_iteration_means_have_t_intervals_over_seeds(tmp_path):
    comparison = compare([known_difference(tmp_path / "multirun")])
    first = comparison.per_iteration["value_calibration_error"][REFERENCE][0]  # seeds: 0.39, 0.40, 0.41
    half = 4.302653 * 0.01 / math.sqrt(3)  # t(0.975, 2 dof) * sd / sqrt(n)
    assert (first.mean, first.low, first.high) == pytest.approx((0.40, 0.40 - half, 0.40 + half))
    # Evaluations every other iteration: iteration 1 has none, and its mean is NaN, not 0.
    assert math.isnan(comparison.per_iteration["eval_mcts_win_rate"][REFERENCE][1].mean)
    last_third = comparison.last_third_means["eval_mcts_win_rate"][REFERENCE]  # iterations 10, 12 and 14
    assert last_third.mean == pytest.approx(0.3 + 0.04 * 12)


def test_interval_formulas_against_scipy():
    a, b = [1.0, 2.0, 3.0], [2.0, 4.0, 6.5]
    gap = difference_interval(a, b)
    expected = stats.ttest_ind(b, a, equal_var=False).confidence_interval(0.95)
    assert (gap.low, gap.high) == pytest.approx((expected.low, expected.high))
    single = mean_interval([0.3])
    assert single.mean == 0.3 and math.isnan(single.low)
    assert math.isnan(difference_interval([1.0], [2.0]).low)


def test_compare_command_writes_the_report(tmp_path):
    root = known_difference(tmp_path / "multirun")
    command = [sys.executable, "-m", "razzle", "compare", str(root)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=1800)
    assert result.returncode == 0, result.stderr
    assert f"{QUARTIC} - {REFERENCE}, value_calibration_error, iterations 10-14: -0.150 [" in result.stdout
    assert "(interval excludes 0)" in result.stdout
    report = (root / "compare" / "report.md").read_text()
    sections = ("## Runs", "## Over the last third (iterations 10-14)", "## Learning speed", "## The training plan's")
    assert "### value_skill" in report
    assert all(section in report for section in sections)
    assert "| value_calibration_error | 0.280 [" in report
    assert "| `loss.quartic=0.25` | 12, 13, 12 | 12.3 (3 of 3 seeds) |" in report
    assert all((root / "compare" / plot).stat().st_size > 0 for plot in ("metrics.png", "differences.png"))


def test_separate_run_folders_and_explicit_grouping(tmp_path, capsys):
    runs = [
        write_run(tmp_path / f"run-{quartic}-{seed}", quartic, seed, [0.3] * ITERATIONS, top1_curve(seed))
        for quartic in (0.0, 0.25)
        for seed in (0, 1)
    ]
    out = tmp_path / "report"
    assert main(["compare", *map(str, runs), "--by", "loss.quartic", "--out", str(out)]) == 0
    assert f"{QUARTIC} (2 seeds)" in capsys.readouterr().out
    assert "`loss.quartic=0.0`" in (out / "report.md").read_text()


def test_runs_of_different_lengths_use_their_common_iterations(tmp_path):
    root = known_difference(tmp_path / "multirun")
    csv = root / "5" / "csv" / "version_0" / "metrics.csv"
    table = pd.read_csv(csv)
    table[~(table["iteration"] >= 9)].to_csv(csv, index=False)
    comparison = compare([root])
    assert comparison.iterations == list(range(9)) and comparison.last_third == [6, 7, 8]
    assert any("different lengths" in note for note in comparison.notes)
    assert comparison.criteria[REFERENCE]["policy top-1 > 0.4"] is False  # 0.335 on average at iteration 8


def test_head_to_head_between_final_models(tmp_path):
    for number, quartic in enumerate((0.0, 0.25)):
        write_run(tmp_path / "multirun" / str(number), quartic, 0, [0.3] * ITERATIONS, top1_curve(0), models=True)
    comparison = compare([tmp_path / "multirun"])
    (duel,) = head_to_head(comparison, games=2, simulations=2)
    assert duel.arm == QUARTIC and duel.result.games == 2
    assert [(a.parent.parent.name, b.parent.parent.name) for a, b, _ in duel.pairs] == [("1", "0")]


@pytest.mark.parametrize(
    "setup, message",
    [
        ("empty", "no training runs in"),
        ("different_metrics", "the runs logged different metrics"),
        ("no_iterations", "has no per-iteration metrics"),
        ("arena_without_models", "has no model files"),
    ],
)
def test_bad_input_gets_one_clear_message(tmp_path, setup, message):
    root = tmp_path / "multirun"
    root.mkdir()
    arguments = []
    if setup == "different_metrics":
        write_run(root / "0", 0.0, 0, [0.3] * ITERATIONS, top1_curve(0))
        write_run(root / "1", 0.25, 0, [0.3] * ITERATIONS, top1_curve(0), skill=False)
    elif setup == "no_iterations":
        write_run(root / "0", 0.0, 0, [0.3] * ITERATIONS, top1_curve(0))
        csv = root / "0" / "csv" / "version_0" / "metrics.csv"
        pd.read_csv(csv).drop(columns="iteration").to_csv(csv, index=False)
    elif setup == "arena_without_models":
        write_run(root / "0", 0.0, 0, [0.3] * ITERATIONS, top1_curve(0))
        write_run(root / "1", 0.25, 0, [0.3] * ITERATIONS, top1_curve(0))
        arguments = ["--arena-games", "2"]
    with pytest.raises(SystemExit) as raised:
        main(["compare", str(root), *arguments])
    assert str(raised.value).startswith("razzle compare: ") and message in str(raised.value)
    if setup == "different_metrics":
        assert "1 lacks value_skill" in str(raised.value)
    assert not (root / "compare").exists()


def test_a_missing_folder_is_named(tmp_path):
    with pytest.raises(CompareError, match="is not a folder"):
        compare([tmp_path / "nowhere"])


def test_a_resumed_run_reads_every_csv_version_and_the_later_one_wins(tmp_path):
    run = write_run(tmp_path / "run", 0.0, 0, [0.3] * ITERATIONS, top1_curve(0))
    resumed = run / "csv" / "version_1"
    resumed.mkdir()
    # The resumed process logs the last iteration again, and its metrics in two rows.
    rows = [
        {"iteration": ITERATIONS - 1, "step": 500, "value_calibration_error": 0.1, "value_std": 0.2},
        {"iteration": ITERATIONS - 1, "step": 501, "eval_mcts_win_rate": 0.9},
        {"iteration": ITERATIONS, "step": 600, "value_calibration_error": 0.05},
    ]
    pd.DataFrame(rows).to_csv(resumed / "metrics.csv", index=False)
    comparison = compare([run])
    assert comparison.iterations == list(range(ITERATIONS + 1))
    calibration = comparison.per_iteration["value_calibration_error"]["all runs"]
    assert [c.mean for c in calibration[-3:]] == pytest.approx([0.3, 0.1, 0.05])
    last = comparison.per_iteration["eval_mcts_win_rate"]["all runs"][ITERATIONS - 1]
    assert last.mean == pytest.approx(0.9)
    assert comparison.per_iteration["value_std"]["all runs"][ITERATIONS - 1].mean == pytest.approx(0.2)


def test_a_metric_logged_as_nan_throughout_still_counts_as_logged(tmp_path):
    # value_skill is NaN while every game is drawn (the smoke preset's 30-turn games).
    runs = [
        write_run(tmp_path / str(seed), 0.0, seed, [0.3] * ITERATIONS, top1_curve(0)) for seed in (0, 1)
    ]
    csv = runs[1] / "csv" / "version_0" / "metrics.csv"
    table = pd.read_csv(csv)
    table["value_skill"] = math.nan
    table.to_csv(csv, index=False)
    comparison = compare(runs)
    assert "value_skill" in comparison.metrics
    assert comparison.last_third_means["value_skill"]["all runs"].n == 1
