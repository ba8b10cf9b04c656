"""`razzle play` and `razzle arena` as a user runs them."""

import re
import subprocess
import sys

import pytest

from razzle.model.io import save_model_file
from razzle.model.network import RazzleNet


# A safety net against a hung command, not a speed limit: a loaded 2-core machine can be
# ten times slower than a quiet one.
HANG_LIMIT_S = 1800


def run_razzle(*args: str, stdin: str = "") -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "razzle", *args], input=stdin, capture_output=True, text=True, timeout=HANG_LIMIT_S
    )


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("model") / "iter_0000.pt"
    save_model_file(RazzleNet.of_size("tiny"), path, {"iteration": 0})
    return path


def test_play_accepts_moves_refuses_bad_ones_and_quits(model_file):
    result = run_razzle(
        "play", "--model", str(model_file), "--simulations", "8", stdin="b1-c3\nmoves\nb1-b2\nundo\nquit\n"
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "AI plays" in out and "visits" in out  # the AI answered and showed its candidates
    assert "illegal action 'b1-b2'" in out  # refused with the reason, the game goes on
    assert out.count("your move>") >= 4


def test_play_a_whole_pass_chain_in_one_line():
    moves = "e1-d3\nd1-d3-d1\n"  # the chain is refused (d1 passed, so it is ineligible)
    result = run_razzle("play", "--simulations", "4", stdin=moves + "quit\n")
    assert result.returncode == 0
    assert "ineligible" in result.stdout


def test_watch_plays_a_whole_game():
    result = run_razzle("play", "--watch", "--delay", "0", "--simulations", "4", "--max-turns", "6")
    assert result.returncode == 0, result.stderr
    assert "game over after 6 turns" in result.stdout or "wins" in result.stdout
    assert '[Result "' in result.stdout


def test_arena_prints_a_result_with_an_interval(model_file):
    result = run_razzle(
        "arena", "--model", str(model_file), "--opponent", "random", "--games", "4", "--simulations", "4", "--max-turns", "20"
    )
    assert result.returncode == 0, result.stderr
    assert "in 4 games" in result.stdout and "95% CI" in result.stdout


@pytest.mark.parametrize("command", ["play", "arena"])
def test_a_file_that_is_not_a_model_is_one_clear_error(tmp_path, command):
    bad = tmp_path / "passwd"
    bad.write_text("root:x:0:0:root:/root:/bin/bash\ndaemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n")
    result = run_razzle(command, "--model", str(bad))
    assert result.returncode != 0
    assert result.stderr.strip() == (
        f"razzle {command}: {bad} is not a readable model file: it is not a file written by torch.save"
    )


def test_the_ai_lists_the_move_it_played_among_its_top_moves():
    # With a uniform prior the opening replies tie on visits: the one played still shows.
    result = run_razzle("play", "--simulations", "64", "--top", "2", stdin="b1-c3\nquit\n")
    assert result.returncode == 0, result.stderr
    played = re.search(r"AI plays (\S+)", result.stdout).group(1)
    listed = result.stdout.split("AI plays", 1)[1].splitlines()[1:3]
    assert re.match(rf"  \* {played} +visits +\d+  value [+-]\d\.\d\d  prior \d\.\d\d$", listed[0])
    assert not listed[1].startswith("  *")


@pytest.mark.parametrize(("command", "default"), [("play", "(default: 200)"), ("arena", "(default: 50)")])
def test_help_shows_the_defaults(command, default):
    result = run_razzle(command, "--help")
    assert result.returncode == 0
    assert default in " ".join(result.stdout.split())
