"""What a self-play actor is doing, in plain types (no torch), so the loop's progress
reports and the server can carry it without importing the engine."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Literal

# starting / restarting: created (again, after it died) and not yet answering
ActorState = Literal["starting", "restarting", "idle", "playing"]


@dataclass(frozen=True)
class ActorStatus:
    """actor: its number; node: the address of the machine it runs on; games: games it
    has finished over the run; games_per_s: those games over its time spent playing;
    restarts: how often it died and was started again."""

    actor: int
    node: str
    state: ActorState
    games: int
    games_per_s: float
    restarts: int

    def as_dict(self) -> dict:
        return asdict(self)
