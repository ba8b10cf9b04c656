"""`razzle perft` and `razzle bench engine` as a user runs them."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

TCMALLOC = Path("/usr/lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4")


def run_razzle(*args: str, preload: Path | None = None) -> subprocess.CompletedProcess:
    """`razzle ARGS` on the system's malloc, or with `preload` as LD_PRELOAD."""
    env = {name: value for name, value in os.environ.items() if name != "LD_PRELOAD"}
    if preload is not None:
        env["LD_PRELOAD"] = str(preload)
    return subprocess.run(
        [sys.executable, "-m", "razzle", *args], capture_output=True, text=True, timeout=1800, env=env
    )


def test_perft_prints_one_line_per_depth():
    result = run_razzle("perft", "3", "--turns")
    assert result.returncode == 0, result.stderr
    lines = [line for line in result.stdout.splitlines() if line.startswith("depth")]
    assert lines == ["depth 1  turn sequences 14", "depth 2  turn sequences 196", "depth 3  turn sequences 3,164"]


def test_perft_refuses_a_bad_depth():
    result = run_razzle("perft", "0")
    assert result.returncode != 0 and "at least 1" in result.stderr


def test_bench_engine_ends_with_a_json_line():
    result = run_razzle("bench", "engine", "--seconds", "0.05", "--batch-sizes", "1", "8")
    assert result.returncode == 0, result.stderr
    figures = json.loads(result.stdout.strip().splitlines()[-1])
    assert figures["bench"] == "engine"
    assert figures["allocator"] == "system"
    for key in ("cpu_b1", "cpu_b8"):
        assert figures[key]["legal_per_s"] > 0
        assert figures[key]["random_games_per_s"] >= 0


@pytest.mark.skipif(not TCMALLOC.exists(), reason="needs Debian's libtcmalloc-minimal4")
def test_bench_figures_name_a_preloaded_allocator():
    result = run_razzle("bench", "engine", "--seconds", "0.05", "--batch-sizes", "1", "--rounds", "1", preload=TCMALLOC)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.strip().splitlines()[-1])["allocator"] == "tcmalloc"
