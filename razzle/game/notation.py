"""Text for actions, pass chains and whole games.

Atomic actions: a knight move ``b1-c3`` (from-to), a pass ``d1-e1`` (the ball's square to
the receiver's square) and ``end``. In a game record a turn is one token: a knight move, or
the ball's path of a pass chain ``d1-e1-e5`` whose ``end`` is implied (or the chain won).
A chain still in progress at the end of an unfinished record carries a trailing ``+``
(``d1-e1+``): its ``end`` has not been played.

Game record format (plain text, one game per file or separated by blank lines)::

    [Rules "max_turns=200 repetition_draw=true"]
    [Result "1-0"]
    1. c1-b3 e8-d6
    2. b3-c5 d8-e8-c6

Header lines are ``[Key "value"]``; ``Result`` is ``1-0``, ``0-1``, ``1/2-1/2`` or ``*``
(unfinished). Move text numbers each pair of turns; ``;`` starts a comment to the end of
the line. Reading replays every action through the rules, so a record that does not
parse or contains an illegal action is refused with the reason.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from razzle.game.board import parse_square
from razzle.game.position import IllegalMoveError, Position
from razzle.game.rules import Rules

RESULTS = {1: "1-0", -1: "0-1", 0: "1/2-1/2"}
_HEADER = re.compile(r'^\[(\w+)\s+"([^"]*)"\]$')
_MOVE_NUMBER = re.compile(r"^\d+\.$")


class GameRecordError(ValueError):
    """A game record that cannot be read; the message says where and why."""


def split_turn(token: str) -> list[str]:
    """One turn token -> its atomic actions: 'd1-e1-e5' -> ['d1-e1', 'e1-e5'] (no 'end')."""
    squares = token.split("-")
    if token == "end" or len(squares) < 2:
        raise ValueError(f"{token!r} is not a knight move or a pass chain")
    for name in squares:
        parse_square(name)
    return [f"{a}-{b}" for a, b in zip(squares, squares[1:])]


def play_turn(position: Position, token: str) -> tuple[Position, list[str]]:
    """Play a whole turn written as one token; returns the new position and the atomic actions.

    A knight move ends the turn by itself; a chain gets its implied `end` unless it won, or
    the token ends in '+' (chain left open). 'end' alone finishes a chain already begun.
    """
    open_chain = token.endswith("+")
    body = token[:-1] if open_chain else token
    actions = ["end"] if body == "end" else split_turn(body)
    for action in actions:
        position = position.play(action)
    if position.mid_chain and not open_chain and not position.is_terminal:
        position = position.play("end")
        actions.append("end")
    return position, actions


def turn_tokens(actions: list[str], start: Position) -> list[str]:
    """Group a game's atomic actions into record tokens, one per turn."""
    tokens: list[str] = []
    chain: list[str] = []
    position = start
    for action in actions:
        origin, _, target = action.partition("-")
        is_pass = action != "end" and origin == position.balls[position.to_move]
        position = position.play(action)
        if action == "end":
            tokens.append("-".join(chain))
            chain = []
        elif is_pass:
            chain = (chain or [origin]) + [target]
            if position.is_terminal:
                tokens.append("-".join(chain))
                chain = []
        else:
            tokens.append(action)
    if chain:
        tokens.append("-".join(chain) + "+")
    return tokens


@dataclass
class GameRecord:
    """A game as its atomic actions plus headers; `position()` replays it."""

    actions: list[str]
    rules: Rules = field(default_factory=Rules)
    headers: dict[str, str] = field(default_factory=dict)

    def position(self) -> Position:
        position = Position.initial(self.rules)
        for index, action in enumerate(self.actions):
            try:
                position = position.play(action)
            except IllegalMoveError as error:
                raise GameRecordError(f"action {index + 1} ({action!r}): {error}") from None
        return position

    def to_text(self) -> str:
        final = self.position()
        headers = {"Rules": _rules_text(self.rules), **self.headers}
        headers["Result"] = RESULTS[final.result] if final.is_terminal else "*"
        lines = [f'[{key} "{value}"]' for key, value in headers.items()]
        tokens = turn_tokens(self.actions, Position.initial(self.rules))
        for number, start in enumerate(range(0, len(tokens), 2), 1):
            lines.append(f"{number}. " + " ".join(tokens[start : start + 2]))
        return "\n".join(lines) + "\n"

    @classmethod
    def from_text(cls, text: str) -> GameRecord:
        headers: dict[str, str] = {}
        tokens: list[str] = []
        for line_number, raw in enumerate(text.splitlines(), 1):
            line = raw.split(";", 1)[0].strip()
            if not line:
                continue
            match = _HEADER.match(line)
            if match:
                headers[match.group(1)] = match.group(2)
            elif line.startswith("["):
                raise GameRecordError(f"line {line_number}: malformed header {line!r}")
            else:
                tokens += [t for t in line.split() if not _MOVE_NUMBER.match(t)]
        rules = _parse_rules(headers.pop("Rules", ""))
        declared = headers.pop("Result", "*")
        position = Position.initial(rules)
        actions: list[str] = []
        for index, token in enumerate(tokens):
            try:
                position, played = play_turn(position, token)
            except (IllegalMoveError, ValueError) as error:
                raise GameRecordError(f"turn {index + 1} ({token!r}): {error}") from None
            actions += played
        actual = RESULTS[position.result] if position.is_terminal else "*"
        if declared != actual:
            raise GameRecordError(f"the record says Result {declared!r} but its moves give {actual!r}")
        return cls(actions=actions, rules=rules, headers=headers)


def _rules_text(rules: Rules) -> str:
    return f"max_turns={rules.max_turns} repetition_draw={str(rules.repetition_draw).lower()}"


def _parse_rules(text: str) -> Rules:
    values: dict[str, object] = {}
    for item in text.split():
        key, _, value = item.partition("=")
        if key == "max_turns" and value.isdigit():
            values[key] = int(value)
        elif key == "repetition_draw" and value in ("true", "false"):
            values[key] = value == "true"
        else:
            raise GameRecordError(f"unknown rules setting {item!r} (max_turns=N, repetition_draw=true|false)")
    return Rules(**values)
