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

Search annotations (optional, written by self-play): a turn token may be followed by one
brace comment per atomic action of the turn, in order, each saying what the search
thought in the position before that action: its root value from the side to move's view
and its most visited actions with their visit shares, most visited first::

    1. c1-b3 {v=+0.012 c1-b3 0.38, e1-d3 0.25, b1-a3 0.12}
    1... f8-g6 {v=-0.020 f8-g6 0.50, b8-c6 0.25}
    ...
    3. d1-b3-f3 {v=+0.120 d1-b3 0.62, d1-f3 0.12} {v=+0.210 b3-f3 0.75, end 0.25} {v=+0.190 end 1.00}

A pass chain's braces cover its passes and its implied ``end``; ``{}`` is an action
without annotation. An annotated record writes one turn per line (``N...`` numbers the
second turn of a pair, as in PGN).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from razzle.game.board import parse_square
from razzle.game.position import IllegalMoveError, Position
from razzle.game.rules import Rules

RESULTS = {1: "1-0", -1: "0-1", 0: "1/2-1/2"}
_HEADER = re.compile(r'^\[(\w+)\s+"([^"]*)"\]$')
_MOVE_NUMBER = re.compile(r"^\d+\.(\.\.)?$")
_WORD = re.compile(r"\{[^{}]*\}|[^\s{}]+|[{}]")  # a brace comment, a token, or a stray brace
_ANNOTATION = re.compile(r"^v=([+-]\d+\.\d+)(?: (.+))?$")
_TOP_MOVE = re.compile(r"^(end|[a-z]\d+-[a-z]\d+) (\d+\.\d+)$")


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
    return [token for token, _ in turn_spans(actions, start)]


def turn_spans(actions: list[str], start: Position) -> list[tuple[str, int]]:
    """Each turn's record token and how many atomic actions it holds (a chain's passes
    and its `end`)."""
    turns: list[tuple[str, int]] = []
    chain: list[str] = []
    position, first = start, 0
    for index, action in enumerate(actions):
        origin, _, target = action.partition("-")
        is_pass = action != "end" and origin == position.balls[position.to_move]
        position = position.play(action)
        token = None
        if action == "end":
            token, chain = "-".join(chain), []
        elif is_pass:
            chain = (chain or [origin]) + [target]
            if position.is_terminal:
                token, chain = "-".join(chain), []
        else:
            token = action
        if token is not None:
            turns.append((token, index + 1 - first))
            first = index + 1
    if chain:
        turns.append(("-".join(chain) + "+", len(actions) - first))
    return turns


@dataclass(frozen=True)
class Annotation:
    """What the search thought in the position before an action: its root value from the
    side to move's view and its most visited actions with their visit shares, most
    visited first. Kept rounded as the text writes them (value to 3 decimals, shares to
    2), so an annotated record round-trips exactly."""

    value: float
    top: tuple[tuple[str, float], ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "value", round(float(self.value), 3) + 0.0)
        object.__setattr__(self, "top", tuple((str(a), round(float(s), 2) + 0.0) for a, s in self.top))

    def to_text(self) -> str:
        moves = "".join(f"{', ' if i else ' '}{action} {share:.2f}" for i, (action, share) in enumerate(self.top))
        return f"{{v={self.value:+.3f}{moves}}}"

    @classmethod
    def from_text(cls, text: str) -> Annotation:
        """`{v=+0.312 d1-e1 0.42, end 0.08}` -> an Annotation; ValueError says what is wrong."""
        match = _ANNOTATION.match(text[1:-1])
        if not match:
            raise ValueError("expected {v=VALUE MOVE SHARE, ...} with a signed value such as v=+0.125")
        value, top = float(match.group(1)), []
        if not -1 <= value <= 1:
            raise ValueError(f"the value {match.group(1)} is outside [-1, 1]")
        for item in match.group(2).split(", ") if match.group(2) else []:
            move = _TOP_MOVE.match(item)
            if not move:
                raise ValueError(f"{item!r} is not a move and its visit share, such as 'd1-e1 0.42'")
            action, share = move.group(1), float(move.group(2))
            if action != "end":
                for square in action.split("-"):
                    parse_square(square)
            if share > 1:
                raise ValueError(f"the visit share {move.group(2)} of {action} is above 1")
            if top and share > top[-1][1]:
                raise ValueError("the top moves must be listed most visited first")
            top.append((action, share))
        return cls(value, tuple(top))


@dataclass
class GameRecord:
    """A game as its atomic actions plus headers; `position()` replays it. `annotations`
    is empty, or holds one Annotation (or None) per action."""

    actions: list[str]
    rules: Rules = field(default_factory=Rules)
    headers: dict[str, str] = field(default_factory=dict)
    annotations: list[Annotation | None] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.annotations and len(self.annotations) != len(self.actions):
            raise ValueError(f"{len(self.annotations)} annotations for {len(self.actions)} actions")
        if all(note is None for note in self.annotations):
            self.annotations = []

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
        turns = turn_spans(self.actions, Position.initial(self.rules))
        if self.annotations:
            lines += self._annotated_lines(turns)
        else:
            tokens = [token for token, _ in turns]
            for number, start in enumerate(range(0, len(tokens), 2), 1):
                lines.append(f"{number}. " + " ".join(tokens[start : start + 2]))
        return "\n".join(lines) + "\n"

    def _annotated_lines(self, turns: list[tuple[str, int]]) -> list[str]:
        """One turn per line, each followed by its actions' annotations (none for a turn
        whose actions have none)."""
        lines, first = [], 0
        for index, (token, count) in enumerate(turns):
            notes = self.annotations[first : first + count]
            first += count
            number = f"{index // 2 + 1}." if index % 2 == 0 else f"{index // 2 + 1}..."
            braces = [note.to_text() if note else "{}" for note in notes] if any(notes) else []
            lines.append(" ".join([number, token, *braces]))
        return lines

    @classmethod
    def from_text(cls, text: str) -> GameRecord:
        headers, turns = _scan(text)
        rules = _parse_rules(headers.pop("Rules", ""))
        declared = headers.pop("Result", "*")
        position = Position.initial(rules)
        actions: list[str] = []
        annotations: list[Annotation | None] = []
        for index, (token, braces) in enumerate(turns):
            try:
                position, played = play_turn(position, token)
            except (IllegalMoveError, ValueError) as error:
                raise GameRecordError(f"turn {index + 1} ({token!r}): {error}") from None
            annotations += _read_annotations(braces, played, f"turn {index + 1} ({token!r})", len(actions))
            actions += played
        actual = RESULTS[position.result] if position.is_terminal else "*"
        if declared != actual:
            raise GameRecordError(f"the record says Result {declared!r} but its moves give {actual!r}")
        return cls(actions=actions, rules=rules, headers=headers, annotations=annotations)


def _scan(text: str) -> tuple[dict[str, str], list[tuple[str, list[str]]]]:
    """A record's headers and its turn tokens, each with its brace comments, as written:
    the text's shape is checked, its moves are not played."""
    headers: dict[str, str] = {}
    turns: list[tuple[str, list[str]]] = []
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
            for word in _WORD.findall(line):
                if word in ("{", "}"):
                    raise GameRecordError(f"line {line_number}: unbalanced brace in {line!r}")
                if word.startswith("{"):
                    if not turns:
                        raise GameRecordError(f"line {line_number}: annotation {word} before any turn")
                    turns[-1][1].append(word)
                elif not _MOVE_NUMBER.match(word):
                    turns.append((word, []))
    return headers, turns


@dataclass(frozen=True)
class RecordOutline:
    """What a list of games shows of a record, read without playing its moves (so about a
    hundred times faster than `GameRecord.from_text`, and not checked against the rules):
    its headers (as `GameRecord.headers`: without Rules and Result), its declared result
    and its number of turns."""

    headers: dict[str, str]
    result: str
    turns: int

    @classmethod
    def from_text(cls, text: str) -> RecordOutline:
        headers, turns = _scan(text)
        result = headers.pop("Result", "*")
        headers.pop("Rules", None)
        return cls(headers, result, len(turns))


def _read_annotations(braces: list[str], played: list[str], turn: str, before: int) -> list[Annotation | None]:
    """The annotations of one turn's actions from the brace comments after its token;
    `before` actions came before the turn."""
    if not braces:
        return [None] * len(played)
    if len(braces) != len(played):
        raise GameRecordError(
            f"{turn} has {len(braces)} annotations but one per action is needed: {', '.join(played)}"
        )
    notes: list[Annotation | None] = []
    for offset, (brace, action) in enumerate(zip(braces, played)):
        try:
            notes.append(None if brace == "{}" else Annotation.from_text(brace))
        except ValueError as error:
            raise GameRecordError(f"action {before + offset + 1} ({action!r}): annotation {brace}: {error}") from None
    return notes


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
