"""The rules configuration: the draw conditions that RULES.md leaves as settings."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Rules:
    """Draw settings; the defaults are those of RULES.md.

    max_turns: the game is drawn after this many completed turns with no winner.
    repetition_draw: the third occurrence of a position at the start of a turn is a draw.
    """

    max_turns: int = 200
    repetition_draw: bool = True

    def __post_init__(self) -> None:
        if not isinstance(self.max_turns, int) or isinstance(self.max_turns, bool) or self.max_turns < 1:
            raise ValueError(f"Rules.max_turns must be a positive integer, got {self.max_turns!r}")
        if not isinstance(self.repetition_draw, bool):
            raise ValueError(f"Rules.repetition_draw must be true or false, got {self.repetition_draw!r}")
