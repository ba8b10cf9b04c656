"""Argument types for the commands' options: a bad value stops at parsing with one line
naming the option and the problem (`razzle bench selfplay: error: argument --batch: ...`),
instead of a traceback from deep inside a run."""

from __future__ import annotations

import argparse

import torch


def positive_int(text: str) -> int:
    return _checked(int, text, lambda value: value >= 1, "a positive integer")


def nonnegative_int(text: str) -> int:
    return _checked(int, text, lambda value: value >= 0, "an integer, 0 or more")


def positive_float(text: str) -> float:
    return _checked(float, text, lambda value: value > 0, "a positive number")


def torch_device(text: str) -> str:
    """A device this machine has: `cpu`, `cuda`, `cuda:1`, ..."""
    try:
        device = torch.device(text)
    except (RuntimeError, ValueError):
        raise argparse.ArgumentTypeError(f"{text!r} is not a torch device (cpu, cuda, cuda:N)") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise argparse.ArgumentTypeError(f"{text!r}: this machine's torch {torch.__version__} sees no CUDA device")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise argparse.ArgumentTypeError(f"{text!r}: there are {torch.cuda.device_count()} CUDA devices")
    return text


def _checked(convert, text: str, valid, expected: str):
    try:
        value = convert(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}") from None
    if not valid(value):
        raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}")
    return value
