"""The README's commands as a user types them: no override of the run folder.

Each test works in a copy of the user-facing files (train.py, selfplay.py, conf/) in a
temporary folder, so the runs land in that folder's `outputs/` exactly where a user's
would, and nothing is written into the checkout.
"""

import csv
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from razzle.model.io import load_model_file
from razzle.selfplay.replay import ReplayStore

ROOT = Path(__file__).resolve().parents[2]
EXPERIMENTS = sorted(path.stem for path in (ROOT / "conf" / "experiment").glob("*.yaml"))
# Generous: these are whole runs, and a loaded 2-core machine can be several times slower.
RUN_LIMIT_S = 1800
# The quartic sweep, shortened to a few seconds a run: both arms, one seed.
SHORT_SWEEP = (
    "seed=0",
    "selfplay.iterations=1",
    "selfplay.games=2",
    "selfplay.parallel=2",
    "selfplay.eval_every=0",
    "search.simulations=4",
    "rules.max_turns=20",
)


@pytest.fixture()
def checkout(tmp_path: Path) -> Path:
    """A user's working directory: the scripts and the configs, nothing else."""
    for script in ("train.py", "selfplay.py"):
        shutil.copy(ROOT / script, tmp_path / script)
    shutil.copytree(ROOT / "conf", tmp_path / "conf")
    return tmp_path


def typed(folder: Path, *command: str, limit: float = RUN_LIMIT_S) -> subprocess.CompletedProcess:
    result = subprocess.run([sys.executable, *command], cwd=folder, capture_output=True, text=True, timeout=limit)
    assert result.returncode == 0, f"{' '.join(command)} failed:\n{result.stderr[-3000:]}"
    return result


def only_folder(parent: Path) -> Path:
    folders = [path for path in parent.iterdir() if path.is_dir()]
    assert len(folders) == 1, f"expected one folder in {parent}, found {folders}"
    return folders[0]


def metric_names(run: Path) -> set[str]:
    with next(run.glob("csv/version_*/metrics.csv")).open() as handle:
        return set(next(csv.reader(handle)))


@pytest.mark.parametrize("experiment", [None, *EXPERIMENTS])
def test_every_preset_resolves_its_whole_config(checkout, experiment):
    """`--cfg all --resolve` resolves hydra.run.dir too: a null `resume` once broke it."""
    preset = [f"experiment={experiment}"] if experiment else []
    result = typed(checkout, "train.py", *preset, "--cfg", "all", "--resolve", limit=300)
    assert "dir: outputs/train/runs/" in result.stdout


def test_resume_names_the_run_folder(checkout):
    result = typed(checkout, "train.py", "resume=outputs/train/runs/mine", "--cfg", "all", "--resolve", limit=300)
    assert "dir: outputs/train/runs/mine" in result.stdout


@pytest.mark.slow
def test_smoke_run_resume_and_selfplay_as_typed(checkout):
    typed(checkout, "train.py", "experiment=smoke")
    run = only_folder(checkout / "outputs" / "train" / "runs")
    assert sorted(path.name for path in (run / "models").iterdir()) == ["iter_0000.pt", "iter_0001.pt"]
    assert (run / "metrics.db").stat().st_size > 0
    assert {"iteration", "loss_total", "value_calibration_error"} <= metric_names(run)

    relative = run.relative_to(checkout)
    typed(checkout, "train.py", "experiment=smoke", f"resume={relative}", "selfplay.iterations=3")
    assert ReplayStore(run / "replay").iterations() == [0, 1, 2]
    _, metadata = load_model_file(run / "models" / "iter_0002.pt")
    assert metadata["iteration"] == 2

    model = relative / "models" / "iter_0002.pt"
    played = typed(checkout, "selfplay.py", f"model_file={model}", *SHORT_SWEEP[-2:], "games=2", "parallel=2")
    worker = only_folder(checkout / "outputs" / "selfplay" / "runs")
    assert len(ReplayStore(worker / "replay").records(0)) == 2
    assert "2 games" in played.stdout


@pytest.mark.slow
def test_quartic_sweep_runs_both_arms(checkout):
    typed(checkout, "train.py", "-m", "experiment=quartic_sweep", *SHORT_SWEEP)
    sweep = only_folder(checkout / "outputs" / "train" / "multiruns")
    arms = sorted(path for path in sweep.iterdir() if path.is_dir() and path.name.isdigit())
    assert [path.name for path in arms] == ["0", "1"]
    quartic = []
    for arm in arms:
        assert (arm / "models" / "iter_0000.pt").is_file()
        overrides = (arm / ".hydra" / "overrides.yaml").read_text()
        quartic.append(next(line for line in overrides.splitlines() if "loss.quartic" in line).split("=")[1])
    assert quartic == ["0.0", "0.25"]
