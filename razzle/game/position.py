"""`Position`: one game as an immutable value, for the CLI, the web UI and outside checks.

It is a batch of one on the batched engine (there is one rules engine), plus the text of
actions and the reasons an action is refused.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import cached_property

import torch

from razzle.game.actions import decode
from razzle.game.board import (
    DIRECTIONS,
    KNIGHT_TO,
    NO_SQUARE,
    RAYS,
    file_of,
    parse_square,
    rank_of,
    square_name,
)
from razzle.game.engine import derive_legal, initial_state, repetition_key, step
from razzle.game.rules import Rules
from razzle.game.state import State

PLAYER_NAMES = ("Player 1", "Player 2")
SYMBOLS = ("x", "o")


class IllegalMoveError(ValueError):
    """An action that is malformed or not legal in the position; the message says why."""


class Position:
    """A single game position. `play` returns a new Position; this one never changes."""

    def __init__(self, state: State):
        if state.batch_size != 1:
            raise ValueError(f"a Position holds exactly one game, got a batch of {state.batch_size}")
        self.state = state

    @classmethod
    def initial(cls, rules: Rules | None = None) -> Position:
        return cls(initial_state(1, rules))

    @classmethod
    def from_pieces(
        cls,
        pieces: tuple[Iterable[str], Iterable[str]],
        balls: tuple[str, str],
        eligible: Iterable[str] = (),
        to_move: int = 0,
        last_knight: str | None = None,
        turn: int = 0,
        rules: Rules | None = None,
    ) -> Position:
        """A constructed position (tests, puzzles): five pieces a side, each ball on one of
        its side's pieces, the listed squares eligible, and optionally the destination of
        the opponent's previous knight move (which can force a pass)."""
        rules = rules or Rules()
        squares = [[parse_square(s) for s in side] for side in pieces]
        if any(len(side) != 5 for side in squares) or len({s for side in squares for s in side}) != 10:
            raise ValueError("each side needs exactly five pieces on ten distinct squares")
        eligible_squares = {parse_square(s) for s in eligible}
        if not eligible_squares <= {s for side in squares for s in side}:
            raise ValueError("eligible squares must hold pieces")
        carriers = []
        for side, ball in enumerate(balls):
            if parse_square(ball) not in squares[side]:
                raise ValueError(f"{PLAYER_NAMES[side]}'s ball on {ball} is not on one of its pieces")
            carriers.append(squares[side].index(parse_square(ball)))
        if not 0 <= turn < rules.max_turns or to_move not in (0, 1):
            raise ValueError("to_move must be 0 or 1 and turn within the turn limit")
        state = initial_state(1, rules)
        state.squares = torch.tensor([squares])
        state.eligible = torch.tensor([[[s in eligible_squares for s in side] for side in squares]])
        state.carrier = torch.tensor([carriers])
        state.to_move = torch.tensor([to_move])
        state.last_knight = torch.tensor([NO_SQUARE if last_knight is None else parse_square(last_knight)])
        state.turn = torch.tensor([turn])
        derive_legal(state)
        state.history.fill_(-1)
        state.history[:, turn] = repetition_key(state)
        return cls(state)

    # --- the game's facts -------------------------------------------------------------
    @property
    def rules(self) -> Rules:
        return self.state.rules

    @property
    def to_move(self) -> int:
        return int(self.state.to_move)

    @property
    def mid_chain(self) -> bool:
        return bool(self.state.mid_chain)

    @property
    def forced(self) -> bool:
        """The side to move must pass this turn (the forced-pass rule)."""
        return bool(self.state.forced)

    @property
    def turn(self) -> int:
        """Completed turns."""
        return int(self.state.turn)

    @property
    def is_terminal(self) -> bool:
        return bool(self.state.done)

    @property
    def winner(self) -> int | None:
        winner = int(self.state.winner)
        return winner if winner >= 0 else None

    @property
    def result(self) -> int | None:
        """+1 / -1 / 0 from Player 1's view; None while the game runs."""
        return int(self.state.result) if self.is_terminal else None

    def pieces(self, side: int) -> list[str]:
        return sorted(square_name(s) for s in self.state.squares[0, side].tolist())

    @property
    def balls(self) -> tuple[str, str]:
        return tuple(square_name(s) for s in self.state.carrier_square[0].tolist())

    @property
    def eligible(self) -> list[str]:
        """Squares of the pieces (either side) that may receive a pass."""
        squares = self.state.squares[0][self.state.eligible[0]].tolist()
        return sorted(square_name(s) for s in squares)

    @property
    def last_knight(self) -> str | None:
        square = int(self.state.last_knight)
        return None if square == NO_SQUARE else square_name(square)

    # --- actions ----------------------------------------------------------------------
    @cached_property
    def _legal(self) -> dict[str, int]:
        return legal_texts(self.state)[0]

    def legal_moves(self) -> list[str]:
        return sorted(self._legal)

    def action_text(self, action: int) -> str:
        """Text of an action index that is legal in this position."""
        for text, index in self._legal.items():
            if index == action:
                return text
        raise IllegalMoveError(f"action index {action} is not legal in this position")

    def action_index(self, text: str) -> int:
        """Index of a legal action given as text; IllegalMoveError with the reason otherwise."""
        action = text.strip().lower()
        if action in self._legal:
            return self._legal[action]
        raise IllegalMoveError(f"illegal action {text!r}: {self._refusal(action)}")

    def play(self, text: str) -> Position:
        action = self.action_index(text)
        return Position(step(self.state, torch.tensor([action])))

    def play_index(self, action: int) -> Position:
        return self.play(self.action_text(action))

    def _refusal(self, action: str) -> str:
        """Why an action that is not in the legal list is refused."""
        if self.is_terminal:
            return "the game is over"
        if action == "end":
            return "'end' finishes a pass chain, and no pass has been made this turn"
        parts = action.split("-")
        if len(parts) > 2:
            return "that is a whole pass chain; play its passes one at a time"
        if len(parts) != 2:
            return "expected a knight move like 'b1-c3', a pass like 'd1-e1', or 'end'"
        try:
            origin, target = (parse_square(p) for p in parts)
        except ValueError as error:
            return str(error)
        me = self.to_move
        own = self.state.squares[0, me].tolist()
        theirs = self.state.squares[0, 1 - me].tolist()
        if origin in theirs:
            return f"{parts[0]} holds {PLAYER_NAMES[1 - me]}'s piece and it is {PLAYER_NAMES[me]}'s turn"
        if origin not in own:
            return f"there is no piece on {parts[0]}"
        if parts[0] == self.balls[me]:
            return self._pass_refusal(origin, target, own, theirs)
        if self.mid_chain:
            return "no knight move after a pass in the same turn: pass again or play 'end'"
        if self.forced:
            return (
                f"forced to pass: the opponent's knight landed on {self.last_knight}, "
                f"next to your ball on {self.balls[me]}"
            )
        if target not in KNIGHT_TO[origin]:
            return f"{parts[0]} to {parts[1]} is not a knight's jump"
        return f"{parts[1]} is occupied; a knight move needs an empty square"

    def _pass_refusal(self, origin: int, target: int, own: list[int], theirs: list[int]) -> str:
        df, dr = file_of(target) - file_of(origin), rank_of(target) - rank_of(origin)
        step_ = (_sign(df), _sign(dr))
        if (df, dr) == (0, 0) or (df and dr and abs(df) != abs(dr)) or step_ not in DIRECTIONS:
            return f"{square_name(target)} is not on a straight line from the ball on {square_name(origin)}"
        ray = [square for square in RAYS[origin][DIRECTIONS.index(step_)] if square != NO_SQUARE]
        first = next((square for square in ray if square in own or square in theirs), None)
        if first != target:
            if target in own or target in theirs:
                return f"the pass is blocked by the piece on {square_name(first)}"
            return f"there is no piece on {square_name(target)} to receive the ball"
        name = square_name(target)
        if target in theirs:
            return f"{name} holds an opponent's piece; a pass must reach one of your own pieces"
        return f"the piece on {name} is ineligible: it has not made a knight move since it last passed (or ever)"

    # --- display ------------------------------------------------------------------------
    def __str__(self) -> str:
        cells = {}
        eligible = set(self.eligible)
        for side in (0, 1):
            for name in self.pieces(side):
                symbol = SYMBOLS[side].upper() if name == self.balls[side] else SYMBOLS[side]
                cells[name] = symbol + ("" if name in eligible else "'")
        lines = []
        for rank in range(8, 0, -1):
            row = " ".join(f"{cells.get(f + str(rank), '.'):<2}" for f in "abcdefg")
            lines.append(f"{rank}  {row}")
        lines.append("   " + " ".join(f"{f:<2}" for f in "abcdefg"))
        lines.append(self._status())
        return "\n".join(lines)

    def _status(self) -> str:
        if self.is_terminal:
            outcome = "draw" if self.winner is None else f"{PLAYER_NAMES[self.winner]} wins"
            return f"game over after {self.turn} turns: {outcome}"
        notes = [f"turn {self.turn + 1}, {PLAYER_NAMES[self.to_move]} ({SYMBOLS[self.to_move]}) to move"]
        if self.mid_chain:
            notes.append("mid-chain: pass again or 'end'")
        if self.forced:
            notes.append("forced to pass")
        return "; ".join(notes) + "   (X/O ball, ' ineligible)"

    def __repr__(self) -> str:
        return f"Position(turn={self.turn}, to_move={self.to_move}, mid_chain={self.mid_chain}, done={self.is_terminal})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Position):
            return NotImplemented
        return torch.equal(repetition_key(self.state), repetition_key(other.state)) and (
            self.mid_chain == other.mid_chain and self.turn == other.turn and self.is_terminal == other.is_terminal
        )

    __hash__ = None


def legal_texts(state: State) -> list[dict[str, int]]:
    """Per game of a batch: {action text: action index} of its legal actions."""
    squares = state.squares.tolist()
    movers = state.to_move.tolist()
    receivers = state.receiver.tolist()
    actions = state.actions.tolist()
    out = []
    for game, legal in enumerate(state.legal.tolist()):
        own = squares[game][movers[game]]
        texts = {}
        for slot in (i for i, ok in enumerate(legal) if ok):
            kind, origin, index = decode(actions[game][slot])
            if kind == "end":
                texts["end"] = actions[game][slot]
                continue
            target = KNIGHT_TO[origin][index] if kind == "knight" else own[receivers[game][index]]
            texts[f"{square_name(origin)}-{square_name(target)}"] = actions[game][slot]
        out.append(texts)
    return out


def _sign(x: int) -> int:
    return (x > 0) - (x < 0)

