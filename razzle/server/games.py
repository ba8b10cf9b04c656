"""Games of the play page: sessions kept in memory, and their JSON view.

A game is small (a Position and its action list), so the server keeps the most recent
ones in memory; a restart forgets them and the page offers a new game.
"""

from __future__ import annotations

import secrets
import threading
from collections import OrderedDict
from dataclasses import dataclass, field

from razzle.game.position import PLAYER_NAMES, Position
from razzle.server.ai import AIPlayer

MAX_GAMES = 512


class GameNotFound(KeyError):
    pass


class NotYourTurn(RuntimeError):
    """A request out of turn: the human plays while the AI is to move, or the reverse."""


class BadAIMove(RuntimeError):
    """The AI player returned something that is not one legal, complete turn."""


@dataclass
class Game:
    id: str
    human_side: int
    simulations: int
    ai_label: str
    ai: AIPlayer
    position: Position = field(default_factory=Position.initial)
    actions: list[str] = field(default_factory=list)
    record: list[str] = field(default_factory=list)
    last_ai_actions: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def humans_turn(self) -> bool:
        return not self.position.is_terminal and self.position.to_move == self.human_side

    def play(self, action: str) -> None:
        """One atomic action of the human; IllegalMoveError (with the reason) if refused."""
        if self.position.is_terminal:
            raise NotYourTurn("the game is over; start a new game")
        if not self.humans_turn:
            raise NotYourTurn("it is the AI's turn")
        self._apply(action)

    def ai_turn(self) -> list[str]:
        """Ask the AI for its whole turn and play it; refuse anything that is not one."""
        if self.position.is_terminal:
            raise NotYourTurn("the game is over; start a new game")
        if self.humans_turn:
            raise NotYourTurn("it is your turn, not the AI's")
        side, start = self.position.to_move, len(self.actions)
        actions = list(self.ai(self.position, self.simulations))
        try:
            for action in actions:
                if self.position.is_terminal or self.position.to_move != side:
                    raise BadAIMove(f"the AI returned {actions}, which goes past the end of its turn")
                self._apply(action)
        except ValueError as error:
            self._undo_to(start)
            raise BadAIMove(f"the AI returned an illegal action: {error}") from None
        except BadAIMove:
            self._undo_to(start)
            raise
        if not self.position.is_terminal and self.position.to_move == side:
            self._undo_to(start)
            raise BadAIMove(f"the AI returned {actions}, which does not finish its turn")
        self.last_ai_actions = actions
        return actions

    def _apply(self, action: str) -> None:
        before = self.position
        after = before.play(action)
        text = action.strip().lower()
        is_pass = text != "end" and text.split("-")[0] == before.balls[before.to_move]
        if is_pass and before.mid_chain:
            self.record[-1] += "-" + text.split("-")[1]
        elif text != "end":
            self.record.append(text)
        self.position = after
        self.actions.append(text)

    def _undo_to(self, length: int) -> None:
        """Replay the first `length` actions: the cheap way back from a refused AI turn."""
        actions, self.actions, self.record = self.actions[:length], [], []
        self.position = Position.initial(self.position.rules)
        for action in actions:
            self._apply(action)

    def view(self) -> dict:
        position = self.position
        return {
            "id": self.id,
            "human_side": self.human_side,
            "simulations": self.simulations,
            "ai": self.ai_label,
            "to_move": position.to_move,
            "turn": position.turn,
            "mid_chain": position.mid_chain,
            "forced": position.forced,
            "is_terminal": position.is_terminal,
            "winner": position.winner,
            "result": position.result,
            "status": self._status(),
            "pieces": [position.pieces(0), position.pieces(1)],
            "balls": list(position.balls),
            "eligible": position.eligible,
            "last_knight": position.last_knight,
            "legal_moves": position.legal_moves(),
            "record": self.record,
            "actions": self.actions,
            "last_ai_actions": self.last_ai_actions,
        }

    def _status(self) -> str:
        position = self.position
        if position.is_terminal:
            if position.winner is None:
                return f"Draw after {position.turn} turns."
            return (
                "You win!" if position.winner == self.human_side else f"The AI ({PLAYER_NAMES[position.winner]}) wins."
            )
        if not self.humans_turn:
            return "The AI is to move."
        if position.mid_chain:
            return "Pass again, or end your turn."
        if position.forced:
            return f"You must pass: the AI's knight landed next to your ball on {position.balls[self.human_side]}."
        return "Your move."


class GameTable:
    """The most recent games by id; the oldest is forgotten beyond MAX_GAMES."""

    def __init__(self, max_games: int = MAX_GAMES):
        self.max_games = max_games
        self._games: OrderedDict[str, Game] = OrderedDict()
        self._lock = threading.Lock()

    def new(self, human_side: int, simulations: int, ai: AIPlayer, ai_label: str) -> Game:
        game = Game(secrets.token_urlsafe(9), human_side, simulations, ai_label, ai)
        with self._lock:
            self._games[game.id] = game
            while len(self._games) > self.max_games:
                self._games.popitem(last=False)
        return game

    def get(self, game_id: str) -> Game:
        with self._lock:
            if game_id not in self._games:
                raise GameNotFound(f"no game {game_id!r} (the server may have restarted): start a new game")
            self._games.move_to_end(game_id)
            return self._games[game_id]
