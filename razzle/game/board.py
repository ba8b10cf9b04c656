"""Board geometry: squares, knight jumps, pass rays, adjacency and the mirror.

Everything here is a constant table built once in plain Python; `tables(device)` hands
out torch copies per device so the batched engine never rebuilds them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import wraps
from typing import TypeVar

import torch

T = TypeVar("T")

FILES = "abcdefg"
RANKS = "12345678"
NUM_FILES = 7
NUM_RANKS = 8
NUM_SQUARES = NUM_FILES * NUM_RANKS  # 56
NO_SQUARE = NUM_SQUARES  # sentinel index: "off the board" / "none"
PIECES_PER_SIDE = 5

# Pass directions (file step, rank step), clockwise from north: opposite of d is (d + 4) % 8.
DIRECTIONS = ((0, 1), (1, 1), (1, 0), (1, -1), (0, -1), (-1, -1), (-1, 0), (-1, 1))
# Knight jumps, clockwise: opposite of j is (j + 4) % 8.
KNIGHT_JUMPS = ((1, 2), (2, 1), (2, -1), (1, -2), (-1, -2), (-2, -1), (-2, 1), (-1, 2))
# The longest straight line on a 7x8 board has 7 further squares. A ray with no occupied
# square reads as empty at its first square, which blocks the pass like an edge does.
RAY_LENGTH = 7


def square(file: int, rank: int) -> int:
    return rank * NUM_FILES + file


def file_of(sq: int) -> int:
    return sq % NUM_FILES


def rank_of(sq: int) -> int:
    return sq // NUM_FILES


def on_board(file: int, rank: int) -> bool:
    return 0 <= file < NUM_FILES and 0 <= rank < NUM_RANKS


def square_name(sq: int) -> str:
    return FILES[file_of(sq)] + RANKS[rank_of(sq)]


def parse_square(name: str) -> int:
    """'d1' -> 3; raises ValueError naming the text for anything else."""
    if len(name) != 2 or name[0] not in FILES or name[1] not in RANKS:
        raise ValueError(f"unknown square {name!r} (files a-g, ranks 1-8)")
    return square(FILES.index(name[0]), RANKS.index(name[1]))


def _step(sq: int, delta: tuple[int, int]) -> int:
    f, r = file_of(sq) + delta[0], rank_of(sq) + delta[1]
    return square(f, r) if on_board(f, r) else NO_SQUARE


def mirror_square(sq: int) -> int:
    """Left-right mirror (file a <-> g); the sentinel maps to itself."""
    if sq == NO_SQUARE:
        return NO_SQUARE
    return square(NUM_FILES - 1 - file_of(sq), rank_of(sq))


def rotate_square(sq: int) -> int:
    """Half-turn rotation, which swaps the two players' sides of the board."""
    return sq if sq == NO_SQUARE else NUM_SQUARES - 1 - sq


def _mirrored_index(deltas: tuple[tuple[int, int], ...]) -> list[int]:
    return [deltas.index((-df, dr)) for df, dr in deltas]


MIRROR_DIRECTION = _mirrored_index(DIRECTIONS)
MIRROR_JUMP = _mirrored_index(KNIGHT_JUMPS)

KNIGHT_TO = [[_step(s, j) for j in KNIGHT_JUMPS] for s in range(NUM_SQUARES)]


def _ray(sq: int, d: tuple[int, int]) -> list[int]:
    out = []
    cur = _step(sq, d)
    while cur != NO_SQUARE:
        out.append(cur)
        cur = _step(cur, d)
    return out + [NO_SQUARE] * (RAY_LENGTH - len(out))


RAYS = [[_ray(s, d) for d in DIRECTIONS] for s in range(NUM_SQUARES)]


def are_adjacent(a: int, b: int) -> bool:
    if NO_SQUARE in (a, b) or a == b:
        return False
    return max(abs(file_of(a) - file_of(b)), abs(rank_of(a) - rank_of(b))) == 1


@dataclass(frozen=True)
class Tables:
    """Device copies of the geometry, indexed by square (NO_SQUARE rows are sentinels)."""

    knight_to: torch.Tensor  # [57, 8] destination of jump j from square s, or NO_SQUARE
    rays: torch.Tensor  # [57, 8, RAY_LENGTH] squares along direction d, padded with NO_SQUARE
    adjacent: torch.Tensor  # [57, 57] bool
    rank: torch.Tensor  # [57] rank index (sentinel: -1)
    square_bit: torch.Tensor  # [57] int64 1 << s (sentinel: 0)


def per_device(build: Callable[[torch.device], T]) -> Callable[[torch.device | str], T]:
    """Cache `build(device)` per device in a plain dict.

    Not `lru_cache`: torch.compile traces through an lru_cache'd function and then guards
    on every element of the Python lists the table was built from (thousands of checks
    before each call of a compiled search step), while it reads a dict entry as the
    tensors it holds, with one guard each."""
    built: dict[torch.device, T] = {}

    @wraps(build)
    def cached(device: torch.device | str) -> T:
        device = torch.device(device)
        found = built.get(device)
        if found is None:
            found = built[device] = build(device)
        return found

    return cached


@per_device
def tables(device: torch.device) -> Tables:
    knight = KNIGHT_TO + [[NO_SQUARE] * 8]
    rays = RAYS + [[[NO_SQUARE] * RAY_LENGTH] * 8]
    squares = range(NUM_SQUARES + 1)
    return Tables(
        knight_to=torch.tensor(knight, dtype=torch.int64, device=device),
        rays=torch.tensor(rays, dtype=torch.int64, device=device),
        adjacent=torch.tensor([[are_adjacent(a, b) for b in squares] for a in squares], device=device),
        rank=torch.tensor([rank_of(s) for s in range(NUM_SQUARES)] + [-1], device=device),
        square_bit=torch.tensor([1 << s for s in range(NUM_SQUARES)] + [0], dtype=torch.int64, device=device),
    )
