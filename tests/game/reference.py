"""An independent single-game reading of RULES.md, written as plainly as possible.

It shares no code with razzle.game on purpose: the tests play thousands of random games
through both and compare every legal-action list and every result.
"""

from __future__ import annotations

from collections import Counter

FILES = "abcdefg"
LINES = [(0, 1), (1, 1), (1, 0), (1, -1), (0, -1), (-1, -1), (-1, 0), (-1, 1)]
JUMPS = [(1, 2), (2, 1), (2, -1), (1, -2), (-1, -2), (-2, -1), (-2, 1), (-1, 2)]


def name(square: tuple[int, int]) -> str:
    return FILES[square[0]] + str(square[1] + 1)


def parse(text: str) -> tuple[int, int]:
    return FILES.index(text[0]), int(text[1]) - 1


def on_board(f: int, r: int) -> bool:
    return 0 <= f < 7 and 0 <= r < 8


class ReferenceGame:
    def __init__(self, max_turns: int = 200, repetition_draw: bool = True):
        self.max_turns, self.repetition_draw = max_turns, repetition_draw
        self.owner = {(f, 0): 0 for f in range(1, 6)} | {(f, 7): 1 for f in range(1, 6)}
        self.eligible: set[tuple[int, int]] = set()
        self.ball = [(3, 0), (3, 7)]
        self.to_move, self.mid_chain, self.last_knight = 0, False, None
        self.turns, self.over, self.winner = 0, False, None
        self.seen = Counter([self.key()])

    def key(self):
        return (
            frozenset(self.owner.items()),
            frozenset(self.eligible),
            tuple(self.ball),
            self.to_move,
            self.forced(),
        )

    def passes(self) -> list[str]:
        me = self.to_move
        bf, br = self.ball[me]
        found = []
        for df, dr in LINES:
            f, r = bf + df, br + dr
            while on_board(f, r) and (f, r) not in self.owner:
                f, r = f + df, r + dr
            if (f, r) in self.owner and self.owner[(f, r)] == me and (f, r) in self.eligible:
                found.append(f"{name((bf, br))}-{name((f, r))}")
        return found

    def forced(self) -> bool:
        if self.mid_chain or self.last_knight is None:
            return False
        (bf, br), (kf, kr) = self.ball[self.to_move], self.last_knight
        return max(abs(bf - kf), abs(br - kr)) == 1 and bool(self.passes())

    def legal(self) -> list[str]:
        if self.over:
            return []
        moves = self.passes()
        if self.mid_chain:
            moves.append("end")
        elif not self.forced():
            for (f, r), side in self.owner.items():
                if side != self.to_move or (f, r) == self.ball[side]:
                    continue
                for df, dr in JUMPS:
                    target = (f + df, r + dr)
                    if on_board(*target) and target not in self.owner:
                        moves.append(f"{name((f, r))}-{name(target)}")
        return sorted(moves)

    def play(self, move: str) -> None:
        assert move in self.legal(), (move, self.legal())
        me = self.to_move
        if move == "end":
            self.mid_chain = False
            self._turn_over(None)
            return
        start, target = (parse(part) for part in move.split("-"))
        if start == self.ball[me]:
            self.eligible.discard(start)
            self.ball[me] = target
            self.mid_chain, self.last_knight = True, None
            if target[1] == (7 if me == 0 else 0):
                self.over, self.winner = True, me
            return
        del self.owner[start]
        self.owner[target] = me
        self.eligible.discard(start)
        self.eligible.add(target)
        self._turn_over(target)

    def _turn_over(self, knight_destination) -> None:
        self.last_knight = knight_destination
        self.to_move = 1 - self.to_move
        self.turns += 1
        key = self.key()
        self.seen[key] += 1
        if self.turns >= self.max_turns:
            self.over = True
        elif self.repetition_draw and self.seen[key] >= 3:
            self.over = True
        elif not self.legal():
            self.over = True
