"""The rules of Razzle Dazzle: a batched tensor engine and a single-game view on top."""

from razzle.game.engine import initial_state, random_actions, step
from razzle.game.position import IllegalMoveError, Position
from razzle.game.rules import Rules
from razzle.game.state import State

__all__ = ["IllegalMoveError", "Position", "Rules", "State", "initial_state", "random_actions", "step"]
