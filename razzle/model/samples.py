"""Training samples: what self-play writes and training reads.

One sample per searched position, everything in the side to move's canonical
perspective (`razzle.model.planes`, `razzle.model.policy`):

============  ================  ===========================================================
field         shape, dtype      meaning
============  ================  ===========================================================
planes        [N, C, 8, 7] f32  the input planes (`encode_states`)
legal         [N, 897] bool     legal actions
policy        [N, 897] f32      the search's visit distribution (sums to 1, legal only)
value         [N] f32           game outcome z from the side to move's view: 1, 0 or -1
difficulty    [N] f32           min(1, KL(policy || prior) / 2), prior = the network's
                                softmax over legal actions at search time
turn          [N] int64         completed turns at the position
search_value  [N] f32           the search's root value q (mean over its visits) from the
                                side to move's view, for value targets that mix z and q
============  ================  ===========================================================

A shard is one ``*.pt`` file of a batch of samples (`Samples.save`); a training run
reads a directory of shards. Shards store planes and policy as float16, which halves
their size: exact for every plane but the turn-limit fraction (off by < 3e-4), and
within 1e-3 relative for visit fractions; far below what training can resolve.

Self-play shards also hold, beside the samples, the model iteration that searched each
one (`searched_by`): a game carried over from one iteration to the next has samples of
both models. Older shards have no tags; readers of samples never need them.

Shards written before search values were recorded lack ``search_value``. They load with
the outcome in its place, which the outcome target never reads; a caller whose target
reads q (`loss.value_target=mix`) asks for it and gets a `SampleFileError` naming the
shard instead: filling in z there would silently train that run on the outcome alone.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, fields, replace
from pathlib import Path

import torch

from razzle.game.actions import NUM_ACTIONS
from razzle.game.engine import initial_state, random_actions, step
from razzle.game.rules import Rules
from razzle.game.state import State
from razzle.model.io import atomic_save, read_payload
from razzle.model.planes import ENCODING_VERSION, encode_states, mirror_planes
from razzle.model.policy import legal_mask, mirror_policy, reorient_policy

SHARD_FORMAT = "razzle-samples"
SHARD_FORMAT_VERSION = 1
_STORED_AS = {"planes": torch.float16, "policy": torch.float16}


class SampleFileError(Exception):
    """A sample shard or directory that cannot be used; the message says why."""


@dataclass
class Samples:
    planes: torch.Tensor
    legal: torch.Tensor
    policy: torch.Tensor
    value: torch.Tensor
    difficulty: torch.Tensor
    turn: torch.Tensor
    search_value: torch.Tensor

    def _map(self, fn) -> Samples:
        return Samples(**{f.name: fn(getattr(self, f.name)) for f in fields(self)})

    def __len__(self) -> int:
        return self.value.shape[0]

    def __getitem__(self, index) -> Samples:
        return self._map(lambda t: t[index])

    def to(self, device: torch.device | str) -> Samples:
        return self._map(lambda t: t.to(device, non_blocking=True))

    def pin_memory(self) -> Samples:
        return self._map(torch.Tensor.pin_memory)

    @staticmethod
    def cat(parts: list[Samples]) -> Samples:
        return Samples(**{f.name: torch.cat([getattr(p, f.name) for p in parts]) for f in fields(Samples)})

    def mirrored(self, where: torch.Tensor | None = None) -> Samples:
        """The left-right mirror of every sample, or only of those where `where` [N] is True."""
        planes, legal, policy = mirror_planes(self.planes), mirror_policy(self.legal), mirror_policy(self.policy)
        if where is not None:
            planes = torch.where(where.view(-1, 1, 1, 1), planes, self.planes)
            legal = torch.where(where.unsqueeze(1), legal, self.legal)
            policy = torch.where(where.unsqueeze(1), policy, self.policy)
        return replace(self, planes=planes, legal=legal, policy=policy)

    def save(self, path: str | os.PathLike, searched_by: torch.Tensor | None = None) -> Path:
        """Write one shard atomically (a reader never sees half a file); `searched_by` [N]
        tags each sample with the model that searched it (see `searched_by`)."""
        tensors = {f.name: getattr(self, f.name).detach().cpu() for f in fields(self)}
        stored = {name: t.to(_STORED_AS.get(name, t.dtype)) for name, t in tensors.items()}
        payload = {
            "format": SHARD_FORMAT,
            "format_version": SHARD_FORMAT_VERSION,
            "encoding_version": ENCODING_VERSION,
            "samples": stored,
        }
        if searched_by is not None:
            if searched_by.shape != (len(self),):
                raise ValueError(f"searched_by must have shape [{len(self)}], got {list(searched_by.shape)}")
            payload["searched_by"] = searched_by.detach().cpu().long()
        return atomic_save(payload, path)

    @classmethod
    def load(cls, path: str | os.PathLike, require_search_value: bool = False) -> Samples:
        """Read one shard; one without search values (older than them) loads with the
        outcome in their place, or is refused with `require_search_value`."""
        path = Path(path)
        payload = read_payload(path, SHARD_FORMAT, "sample shard", SampleFileError)
        stored = payload.get("samples", {})
        names = [f.name for f in fields(cls)]
        if isinstance(stored, dict) and "search_value" not in stored and "value" in stored:
            if require_search_value:
                raise SampleFileError(
                    f"{path} has no search values (it was written before razzle recorded them), and "
                    "loss.value_target=mix trains on them: use loss.value_target=outcome or play new games"
                )
            stored = {**stored, "search_value": stored["value"]}
        if not isinstance(stored, dict) or sorted(stored) != sorted(names):
            raise SampleFileError(f"{path} lacks sample fields (expected {', '.join(names)})")
        samples = cls(**{name: stored[name].float() if name in _STORED_AS else stored[name] for name in names})
        if any(getattr(samples, name).shape[0] != len(samples) for name in names):
            raise SampleFileError(f"{path} has sample fields of different lengths")
        return samples


def searched_by(path: str | os.PathLike) -> torch.Tensor | None:
    """[N] the model (self-play iteration) that searched each sample of a shard, or None
    for a shard written without the tags. The tags sit beside the samples in the payload,
    so readers that do not know them load the shard as before."""
    path = Path(path)
    tags = read_payload(path, SHARD_FORMAT, "sample shard", SampleFileError).get("searched_by")
    return tags if isinstance(tags, torch.Tensor) else None


def shard_paths(directory: str | os.PathLike) -> list[Path]:
    """The ``*.pt`` shards under a directory (its subfolders too, as in the replay store's
    ``iter_NNNN/samples.pt``) in path order; name shards so that this is age order."""
    return sorted(Path(directory).rglob("*.pt"))


def difficulty_target(search_policy: torch.Tensor, prior_logits: torch.Tensor, legal: torch.Tensor) -> torch.Tensor:
    """[B] min(1, KL(pi_search || p_prior) / 2), p_prior = softmax of the logits over legal
    actions: how far search moved away from the raw network."""
    log_prior = prior_logits.float().masked_fill(~legal, float("-inf")).log_softmax(1)
    kl = (torch.special.xlogy(search_policy, search_policy) - search_policy * log_prior.clamp(min=-1e30)).sum(1)
    return (kl / 2).clamp(0, 1)


def build_samples(
    state: State,
    search_policy: torch.Tensor,
    prior_logits: torch.Tensor,
    outcome: torch.Tensor,
    search_value: torch.Tensor,
) -> Samples:
    """Samples of B searched positions, as self-play makes them.

    state: the positions (not finished); search_policy [B, 897]: the search's visit
    distribution over ABSOLUTE action ids; prior_logits [B, 897]: the evaluator's logits
    for the position (absolute ids); outcome [B]: the game's final result from Player 1's
    view (+1, 0, -1); search_value [B]: the search's root value, already from the side to
    move's view (`SearchResult.root_value`). Everything else is turned into the canonical
    perspective here.
    """
    legal = legal_mask(state)
    if search_policy.shape != legal.shape or prior_logits.shape != legal.shape:
        raise ValueError(f"search_policy and prior_logits must have shape {list(legal.shape)}")
    if search_value.shape != (legal.shape[0],):
        raise ValueError(f"search_value must have shape [{legal.shape[0]}], got {list(search_value.shape)}")
    if bool(state.done.any()):
        raise ValueError("finished games have nothing to learn from: samples need positions with legal actions")
    policy = reorient_policy(search_policy.float(), state.to_move)
    if bool((policy * ~legal).sum(1).gt(1e-6).any()):
        raise ValueError("the search policy puts mass on illegal actions")
    prior = reorient_policy(prior_logits.float(), state.to_move)
    side = torch.where(state.to_move == 0, 1.0, -1.0)
    return Samples(
        planes=encode_states(state),
        legal=legal,
        policy=policy,
        value=outcome.float() * side,
        difficulty=difficulty_target(policy, prior, legal),
        turn=state.turn.clone(),
        search_value=search_value.float().to(legal.device),
    )


def random_play_samples(count: int, seed: int = 0, rules: Rules | None = None, max_ply: int = 80) -> Samples:
    """Samples from random games, for tests and benchmarks: each game is sampled at a random
    ply (or its last unfinished position) and played out at random for the outcome; the
    "search policy" is a peaked random distribution over the legal actions and the "search
    value" a uniform draw in [-1, 1]."""
    generator = torch.Generator().manual_seed(seed)
    state = initial_state(count, rules or Rules())
    stop = torch.randint(0, max_ply, (count,), generator=generator)
    sampled = state
    ply = 0
    while not bool(state.done.all()):
        sampled = sampled.where((ply <= stop) & ~state.done, state)
        state = step(state, random_actions(state, generator))
        ply += 1
    legal_slots = sampled.legal
    noise = torch.randn(legal_slots.shape, generator=generator) * 2
    visits = noise.masked_fill(~legal_slots, float("-inf")).softmax(1)
    search_policy = torch.zeros(count, NUM_ACTIONS).scatter_(1, sampled.actions, visits)
    prior_logits = torch.randn(search_policy.shape, generator=generator)
    search_value = torch.rand(count, generator=generator) * 2 - 1
    return build_samples(sampled, search_policy, prior_logits, state.result, search_value)
