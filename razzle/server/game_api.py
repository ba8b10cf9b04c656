"""The small game API behind the play page: new game, state, play an action, AI move.

Game requests need no token: they change no stored data. Games live in a bounded table
(games.MAX_GAMES), and only a few AI searches run at once (`max_ai_moves` of create_app):
a search of thousands of simulations takes seconds of CPU, and requests beyond the limit
get a 503 at once instead of holding server threads the training API needs.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Request, status

from razzle.game.position import IllegalMoveError
from razzle.server.games import BadAIMove, Game, GameNotFound, NotYourTurn
from razzle.server.schemas import UNREADABLE_BODY, GameView, NewGame, PlayAction, problems

router = APIRouter(prefix="/game", tags=["game"])
GameId = Annotated[str, Path(pattern=r"^[A-Za-z0-9_-]{1,32}$")]


def _game(request: Request, game_id: str) -> Game:
    try:
        return request.app.state.games.get(game_id)
    except GameNotFound as error:
        raise HTTPException(status.HTTP_404_NOT_FOUND, error.args[0]) from None


@router.post("/new", response_model=GameView, responses=problems(_400=UNREADABLE_BODY))
def new_game(body: NewGame, request: Request) -> dict:
    """Start a game against the AI; when you play Player 2, ask `/game/{id}/ai` for its first turn."""
    ai, label = request.app.state.ai_for_new_game()
    return request.app.state.games.new(body.human_side, body.simulations, ai, label).view()


@router.get("/{game_id}", response_model=GameView, responses=problems(_404="no such game"))
def game_state(game_id: GameId, request: Request) -> dict:
    game = _game(request, game_id)
    with game.lock:
        return game.view()


@router.post(
    "/{game_id}/play",
    response_model=GameView,
    responses=problems(
        _400=f"an illegal action, and why; or {UNREADABLE_BODY}",
        _404="no such game",
        _409="not your turn, or the game is over",
    ),
)
def play(game_id: GameId, body: PlayAction, request: Request) -> dict:
    """Play one atomic action of your turn: a knight move, one pass, or `end`."""
    game = _game(request, game_id)
    with game.lock:
        try:
            game.play(body.action)
        except IllegalMoveError as error:
            raise HTTPException(status.HTTP_400_BAD_REQUEST, str(error)) from None
        except NotYourTurn as error:
            raise HTTPException(status.HTTP_409_CONFLICT, str(error)) from None
        return game.view()


@router.post(
    "/{game_id}/ai",
    response_model=GameView,
    responses=problems(
        _404="no such game",
        _409="not the AI's turn, or the game is over",
        _500="the AI returned an illegal turn",
        _503="the server's AI searches are all busy; retry after the Retry-After seconds",
    ),
)
def ai_move(game_id: GameId, request: Request) -> dict:
    """The AI plays its whole turn; `last_ai_actions` lists what it did."""
    game = _game(request, game_id)
    slots = request.app.state.ai_slots
    if not slots.acquire(blocking=False):
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE,
            "every AI search slot of this server is busy; retry shortly",
            headers={"Retry-After": "2"},
        )
    try:
        return _ai_turn(game)
    finally:
        slots.release()


def _ai_turn(game: Game) -> dict:
    with game.lock:
        try:
            game.ai_turn()
        except NotYourTurn as error:
            raise HTTPException(status.HTTP_409_CONFLICT, str(error)) from None
        except BadAIMove as error:
            raise HTTPException(status.HTTP_500_INTERNAL_SERVER_ERROR, str(error)) from None
        return game.view()
