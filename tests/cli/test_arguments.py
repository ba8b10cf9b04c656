"""Bad option values stop at parsing with one line naming the option, not a traceback."""

import argparse
import subprocess
import sys

import pytest
import torch

from razzle.cli import build_parser
from razzle.cli.arguments import nonnegative_int, positive_float, positive_int, torch_device


@pytest.mark.parametrize(
    ("convert", "text", "value"),
    [(positive_int, "3", 3), (nonnegative_int, "0", 0), (positive_float, "0.5", 0.5), (torch_device, "cpu", "cpu")],
)
def test_good_values_pass_through(convert, text, value):
    assert convert(text) == value


@pytest.mark.parametrize(
    ("convert", "text", "message"),
    [
        (positive_int, "0", "expected a positive integer, got '0'"),
        (positive_int, "2.5", "expected a positive integer, got '2.5'"),
        (nonnegative_int, "-1", "expected an integer, 0 or more, got '-1'"),
        (positive_float, "-1", "expected a positive number, got '-1'"),
        (positive_float, "nan", "expected a positive number, got 'nan'"),
        (torch_device, "gpu", "'gpu' is not a torch device"),
    ],
)
def test_bad_values_name_the_problem(convert, text, message):
    with pytest.raises(argparse.ArgumentTypeError, match=message.replace("(", r"\(")):
        convert(text)


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a CUDA device")
def test_cuda_without_a_cuda_device_is_refused():
    with pytest.raises(argparse.ArgumentTypeError, match="sees no CUDA device"):
        torch_device("cuda")


@pytest.mark.parametrize(
    ("argv", "option"),
    [
        (["bench", "selfplay", "--batch", "0"], "--batch"),
        (["bench", "selfplay", "--seconds", "-1"], "--seconds"),
        (["bench", "selfplay", "--models", "huge"], "--models"),
        (["bench", "search", "--threads", "0"], "--threads"),
        (["bench", "engine", "--device", "gpu"], "--device"),
        (["bench", "train", "--steps", "0"], "--steps"),
        (["bench", "actors", "--actors", "0"], "--actors"),
        (["arena", "--device", "gpu"], "--device"),
        (["arena", "--model", "m.pt", "--games", "0"], "--games"),
        (["arena", "--model", "m.pt", "--opening-turns", "-1"], "--opening-turns"),
        (["compare", "runs", "--arena-games", "-1"], "--arena-games"),
        (["perft", "2", "--device", "gpu"], "--device"),
    ],
)
def test_every_command_parses_its_options_strictly(argv, option, capsys):
    with pytest.raises(SystemExit) as stopped:
        build_parser().parse_args(argv)
    assert stopped.value.code == 2
    assert f"error: argument {option}" in capsys.readouterr().err


def test_a_bad_value_is_one_error_line_as_a_user_sees_it():
    result = subprocess.run(
        [sys.executable, "-m", "razzle", "bench", "selfplay", "--batch", "0"], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1] == (
        "razzle bench selfplay: error: argument --batch: expected a positive integer, got '0'"
    )
