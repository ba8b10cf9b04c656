"""`razzle perft` and `razzle bench engine` as a user runs them."""

import json
import subprocess
import sys


def run_razzle(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "razzle", *args], capture_output=True, text=True, timeout=1800)


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
    for key in ("cpu_b1", "cpu_b8"):
        assert figures[key]["legal_per_s"] > 0
        assert figures[key]["random_games_per_s"] >= 0
