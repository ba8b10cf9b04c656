"""Model files: the network's weights together with everything needed to rebuild it.

A model file is a `torch.save` of a plain dictionary (weights, architecture, input
encoding version, free-form metadata), so it loads without Hydra, without the training
code and with `weights_only=True`: loading an uploaded file cannot run code.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import torch

from razzle.model.network import RazzleNet
from razzle.model.planes import ENCODING_VERSION

FORMAT = "razzle-model"
FORMAT_VERSION = 1
ZIP_MAGIC = b"PK\x03\x04"  # torch.save writes a zip archive


class ModelFileError(Exception):
    """A model file that is missing, corrupt or made for a different razzle."""


def atomic_save(obj: Any, path: str | os.PathLike) -> Path:
    """`torch.save` to a temporary file beside `path`, then rename: readers never see a
    half-written file, and a failed save leaves any previous file untouched."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as file:
            torch.save(obj, file)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path


def save_model_file(network: RazzleNet, path: str | os.PathLike, metadata: dict | None = None) -> Path:
    """Write `network` and JSON-like `metadata` (e.g. iteration, run name) to `path`."""
    metadata = dict(metadata or {})
    try:
        json.dumps(metadata)
    except (TypeError, ValueError) as error:
        raise ValueError(f"model metadata must be plain JSON-like values: {error}") from error
    payload = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "encoding_version": ENCODING_VERSION,
        "architecture": dict(network.architecture),
        "state_dict": {name: t.detach().cpu() for name, t in network.state_dict().items()},
        "metadata": metadata,
    }
    return atomic_save(payload, path)


def read_payload(path: Path, file_format: str, what: str, error: type[Exception]) -> dict:
    """Load a razzle file safely (weights only: a file cannot run code) and check that it is
    of `file_format` and of this razzle's input encoding; `error` names any problem."""
    if not path.exists():
        raise error(f"{what} {path} does not exist")
    if not path.is_file():
        raise error(f"{path} is not a {what}: it is not a regular file")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many kinds for damaged or foreign files
        raise error(f"{path} is not a readable {what}: {_unreadable_reason(path)}") from exc
    if not isinstance(payload, dict) or payload.get("format") != file_format:
        raise error(f"{path} is not a razzle {what}")
    if payload.get("encoding_version") != ENCODING_VERSION:
        raise error(
            f"{path} was written for input encoding {payload.get('encoding_version')!r}; "
            f"this razzle encodes version {ENCODING_VERSION}, so a network would misread its positions"
        )
    return payload


def _unreadable_reason(path: Path) -> str:
    """Why torch could not load `path`, in a user's words: torch's own messages name its
    internals ("list index out of range", "PytorchStreamReader failed ...")."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(4)
    except OSError as problem:
        return problem.strerror or type(problem).__name__
    if head == ZIP_MAGIC:
        return "the file is damaged or truncated, or holds objects a safe load refuses"
    return "it is not a file written by torch.save" if head else "the file is empty"


def load_model_file(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> tuple[RazzleNet, dict]:
    """(network in eval mode on `map_location`, metadata); ModelFileError says what is wrong."""
    path = Path(path)
    payload = read_payload(path, FORMAT, "model file", ModelFileError)
    if payload.get("format_version") != FORMAT_VERSION:
        raise ModelFileError(
            f"{path} has model file format {payload.get('format_version')!r}; this razzle reads {FORMAT_VERSION}"
        )
    try:
        network = RazzleNet(**payload["architecture"])
        network.load_state_dict(payload["state_dict"])
    except (KeyError, TypeError, ValueError, RuntimeError) as error:
        raise ModelFileError(f"{path} holds an incompatible network: {error}") from error
    metadata = payload.get("metadata")
    return network.to(map_location).eval(), dict(metadata) if isinstance(metadata, dict) else {}
