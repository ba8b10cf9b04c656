"""`razzle bench selfplay` as a user runs it, at a toy size."""

import json
import subprocess
import sys


def test_bench_selfplay_reports_games_per_s_overheads_and_raw_search_speed():
    command = [sys.executable, "-m", "razzle", "bench", "selfplay", "--models", "tiny", "--batch", "4"]
    command += ["--simulations", "2", "--raw-batch-sizes", "8", "--seconds", "0.05", "--games", "2", "--max-turns", "4"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    figures = json.loads(result.stdout.strip().splitlines()[-1])
    assert figures["bench"] == "selfplay"
    assert figures["tiny_games_per_s_batch"] > 0 and figures["tiny_games_per_s_session"] > 0
    assert figures["session_vs_batch_games_per_s"] > 0
    assert 0 < figures["tiny_search_overhead"] and 0 < figures["tiny_evaluator_share"] <= 1
    assert figures["uniform_sims_per_s_b8"] > 0
