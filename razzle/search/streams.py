"""Per-game randomness, so a game's search never depends on the other games in its batch.

Each game has its own integer seed. Tie-breaking, root Dirichlet noise and self-play's
move choice all draw from counter-based hashes of (seed, counter): a few vectorised
integer ops on the device, no generator state and no loop over games.
"""

from __future__ import annotations

import math

import torch

_MASK64 = (1 << 64) - 1
SEED_LIMIT = 1 << 62  # seeds are integers in [0, SEED_LIMIT)


def _signed(constant: int) -> int:
    """A 64-bit constant as the int64 torch stores (wrapping arithmetic is what we want)."""
    constant &= _MASK64
    return constant - (1 << 64) if constant >= 1 << 63 else constant


_GOLDEN = _signed(0x9E3779B97F4A7C15)
_MIX1 = _signed(0xBF58476D1CE4E5B9)
_MIX2 = _signed(0x94D049BB133111EB)
_NOISE = _signed(0xD1B54A32D192ED03)  # salt of the root-noise streams


def _shift_right(x: torch.Tensor, bits: int) -> torch.Tensor:
    """Logical right shift of int64 (torch shifts arithmetically)."""
    return (x >> bits) & ((1 << (64 - bits)) - 1)


def _mix(x: torch.Tensor) -> torch.Tensor:
    """splitmix64's finaliser: every input bit affects every output bit."""
    x = (x ^ _shift_right(x, 30)) * _MIX1
    x = (x ^ _shift_right(x, 27)) * _MIX2
    return x ^ _shift_right(x, 31)


class TieBreakKeys:
    """`keys(nodes)`: [B, num_slots] int64 pseudo-random keys in [0, 2**31) for the slots of
    node `nodes[b]` of game b, from the games' seeds. The full mix runs once per game (here)
    and once per node; the slots get one cheap multiply-shift round on top, enough to
    order equal children. hold(name, tensor) -> tensor: where its tensors are kept (as
    `Tree`'s)."""

    def __init__(self, seeds: torch.Tensor, num_slots: int, hold):
        self._games = hold("tie_break.games", _mix(seeds + _GOLDEN))
        self._slots = hold("tie_break.slots", torch.arange(1, num_slots + 1, device=seeds.device) * _MIX1)

    def __call__(self, nodes: torch.Tensor) -> torch.Tensor:
        per_node = _mix(self._games + nodes * _GOLDEN)
        return _shift_right((per_node.unsqueeze(1) ^ self._slots) * _MIX2, 33)


def dirichlet_noise(seeds: torch.Tensor, legal: torch.Tensor, alpha: float) -> torch.Tensor:
    """[B, S] float32 Dirichlet(alpha) samples over each game's legal slots (0 elsewhere).

    Normalised Gamma(alpha) variates, computed in logs: Marsaglia and Tsang's rejection
    method draws Gamma(alpha + 1) (a normal and a uniform per try, accepted with
    probability above 0.95; the rare rejected slots try again with the next counters), and
    U ** (1 / alpha) scales it down to Gamma(alpha) (their boost, exact for every alpha).
    Each slot's tries come from its own counters, so a game's noise depends on its seed
    alone; one host read per round of retries, none inside a simulation."""
    B, S = legal.shape
    game = _mix(seeds ^ _NOISE).unsqueeze(1)
    slots = torch.arange(1, S + 1, device=legal.device)

    def draws(stream: int, fields: int) -> list[torch.Tensor]:
        """`fields` [B, S] float32 uniforms in (0, 1], 21 bits each, of counter `stream`."""
        bits = _mix(game + (slots + stream * S) * _GOLDEN)
        low_bits = (1 << 21) - 1  # the remainder mod 2**21 of a non-negative value, without a division
        return [((_shift_right(bits, 64 - 21 * (k + 1)) & low_bits) + 1).float() / (1 << 21) for k in range(fields)]

    d = alpha + 1 - 1 / 3
    c = 1 / math.sqrt(9 * d)
    log_gamma = torch.zeros(B, S, device=legal.device)
    pending = legal.clone()
    tries = 0
    while bool(pending.any()):
        tries += 1
        radius, angle, accept_at = draws(tries, 3)
        x = torch.sqrt(-2 * torch.log(radius)) * torch.cos(2 * math.pi * angle)
        v = (1 + c * x) ** 3
        log_v = torch.log(v.clamp(min=1e-30))
        accepted = pending & (v > 0) & (torch.log(accept_at) < 0.5 * x * x + d - d * v + d * log_v)
        log_gamma = torch.where(accepted, math.log(d) + log_v, log_gamma)
        pending &= ~accepted
    (boost,) = draws(0, 1)
    log_gamma = log_gamma + torch.log(boost) / alpha
    noise = torch.where(legal, log_gamma, float("-inf")).softmax(1)
    return torch.where(legal, noise, 0.0)


def check_seeds(seeds: torch.Tensor, batch_size: int) -> torch.Tensor:
    """Validate user-supplied per-game seeds: one integer in [0, SEED_LIMIT) per game."""
    if seeds.shape != (batch_size,) or seeds.dtype != torch.int64:
        raise ValueError(f"seeds must be an int64 tensor of shape [{batch_size}], got {seeds.dtype} {tuple(seeds.shape)}")
    if bool(((seeds < 0) | (seeds >= SEED_LIMIT)).any()):
        raise ValueError(f"seeds must lie in [0, 2**62), got {seeds.tolist()}")
    return seeds


def draw_seeds(batch_size: int, generator: torch.Generator | None = None, device="cpu") -> torch.Tensor:
    """Fresh per-game seeds from a torch generator (self-play, matches)."""
    return torch.randint(0, SEED_LIMIT, (batch_size,), generator=generator).to(device)


def game_seeds(seed: int, games: torch.Tensor) -> torch.Tensor:
    """[n] the seed of each numbered game of a self-play stream seeded with `seed`: a game's
    randomness follows from its number alone, whichever batch slot it is played in."""
    base = _mix(torch.full_like(games, seed & (SEED_LIMIT - 1)) + _MIX1)
    return _mix(base + (games + 1) * _GOLDEN) & (SEED_LIMIT - 1)


def move_seeds(seeds: torch.Tensor, moves: torch.Tensor) -> torch.Tensor:
    """[n] the search seed of move `moves[i]` of the game seeded `seeds[i]`."""
    return _mix(_mix(seeds + _MIX2) + (moves + 1) * _GOLDEN) & (SEED_LIMIT - 1)


def uniforms(seeds: torch.Tensor, count: int) -> torch.Tensor:
    """[n, count] float32 in [0, 1), 24 random bits each, a counter-based stream per seed
    (the move choice of self-play, independent of the batch like the search's own)."""
    counters = torch.arange(1, count + 1, device=seeds.device) * _GOLDEN
    bits = _shift_right(_mix((seeds.unsqueeze(1) ^ _MIX1) + counters), 40)
    return bits.float() / float(1 << 24)
