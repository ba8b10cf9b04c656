"""Self-play games for the browser, read from runs' replay stores (`<run>/replay/iter_NNNN/
games.txt`, see razzle.selfplay.replay), and the API that lists and replays them.

Read only: the folders belong to the training run, which may be writing its next iteration
(it renames finished iterations into place, so a folder listed here is complete).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, Request, status
from fastapi import Path as PathParam
from pydantic import BaseModel, Field

from razzle.game.notation import RESULTS, Annotation, GameRecord, GameRecordError, RecordOutline, play_turn, turn_tokens
from razzle.game.position import Position
from razzle.server.schemas import LABEL_PATTERN, problems

GAMES_FILE = "games.txt"
_ITERATION = re.compile(r"^iter_(\d{4,})$")


def run_name_of(folder: Path) -> str:
    """A run's default name, from its folder's name: characters outside the label
    alphabet become '-'."""
    name = re.sub(r"[^A-Za-z0-9._-]", "-", Path(folder).resolve().name).lstrip("._-")
    return name[:128] or "run"


class ReplayLibrary:
    """Run name -> its replay folder."""

    def __init__(self, folders: Mapping[str, str | Path] | None = None):
        self.folders = {run: Path(folder) for run, folder in (folders or {}).items()}

    def iterations(self, run: str) -> list[dict]:
        """[{iteration, games}] of the run's complete iterations, oldest first."""
        root = self.folders.get(run)
        if root is None or not root.is_dir():
            return []
        out = []
        for folder in sorted(root.iterdir()):
            match = _ITERATION.match(folder.name)
            if match and (folder / GAMES_FILE).is_file():
                out.append({"iteration": int(match.group(1)), "games": len(self._blocks(folder / GAMES_FILE))})
        return sorted(out, key=lambda i: i["iteration"])

    def outlines(self, run: str, iteration: int) -> list[RecordOutline]:
        """The iteration's games as a list shows them, read without replaying a move."""
        path = self._games_file(run, iteration)
        try:
            return [RecordOutline.from_text(block) for block in self._blocks(path)]
        except GameRecordError as error:
            raise ValueError(f"{path} holds a record that cannot be read: {error}") from None

    def record(self, run: str, iteration: int, index: int) -> GameRecord:
        """Game `index` of the iteration, replayed through the rules (only that one)."""
        path = self._games_file(run, iteration)
        blocks = self._blocks(path)
        if index >= len(blocks):
            raise LookupError(f"iteration {iteration} of {run!r} has {len(blocks)} games")
        try:
            return GameRecord.from_text(blocks[index])
        except GameRecordError as error:
            raise ValueError(f"{path}, game {index + 1}: the record does not replay: {error}") from None

    def _games_file(self, run: str, iteration: int) -> Path:
        root = self.folders.get(run)
        path = None if root is None else root / f"iter_{iteration:04d}" / GAMES_FILE
        if path is None or not path.is_file():
            raise LookupError(f"no self-play games of run {run!r} iteration {iteration} on this server")
        return path

    @staticmethod
    def _blocks(path: Path) -> list[str]:
        return [block for block in path.read_text().split("\n\n") if block.strip()]


def frames(record: GameRecord) -> list[dict]:
    """The position before the first turn and after every turn, with the turn that led to
    it: its token, who played it, and the squares it went through (a pass chain's path is
    the ball's path). Where the record is annotated, a frame also carries the search made
    in its position before the next turn (`search`) and those made inside that turn's
    pass chain, after each pass (`chain_searches`)."""
    position = Position.initial(record.rules)
    out = [_frame(position, None, None, "start", [])]
    notes = record.annotations or [None] * len(record.actions)
    done = 0
    for token in turn_tokens(record.actions, Position.initial(record.rules)):
        mover, ball = position.to_move, position.balls[position.to_move]
        squares = [s for s in token.split("-") if s != "end"]
        kind = "pass" if squares and squares[0] == ball else "knight" if len(squares) == 2 else "other"
        position, played = play_turn(position, token)
        searches = [_search(note, action) for note, action in zip(notes[done : done + len(played)], played)]
        done += len(played)
        out[-1]["search"] = searches[0]
        out[-1]["chain_searches"] = [search for search in searches[1:] if search is not None]
        out.append(_frame(position, token, mover, kind, squares))
    return out


def _search(note: Annotation | None, played: str) -> dict | None:
    if note is None:
        return None
    return {"value": note.value, "top": [{"move": m, "share": s} for m, s in note.top], "played": played}


def _frame(position: Position, token: str | None, mover: int | None, kind: str, path: list[str]) -> dict:
    return {
        "token": token,
        "mover": mover,
        "kind": kind,
        "path": path,
        "pieces": [position.pieces(0), position.pieces(1)],
        "balls": list(position.balls),
        "eligible": position.eligible,
        "turn": position.turn,
        "to_move": position.to_move,
        "is_terminal": position.is_terminal,
        "winner": position.winner,
        "search": None,
        "chain_searches": [],
    }


def _result(final: dict) -> str:
    """The result text of a game from its last frame (winner: the side that won, 0 or 1)."""
    if not final["is_terminal"]:
        return "*"
    return RESULTS[0 if final["winner"] is None else 1 - 2 * final["winner"]]


# --- the API -----------------------------------------------------------------------------

router = APIRouter(prefix="/training/games", tags=["games"])
RunName = Annotated[str, PathParam(pattern=LABEL_PATTERN)]
IterationNumber = Annotated[int, PathParam(ge=0)]


class IterationGames(BaseModel):
    iteration: int
    games: int


class RunGames(BaseModel):
    run: str
    iterations: list[IterationGames]


class GameLibrary(BaseModel):
    runs: list[RunGames] = Field(description="runs whose replay folders this server reads")


class GameSummary(BaseModel):
    index: int
    result: str = Field(description="1-0, 0-1, 1/2-1/2 or *, as the record declares it")
    turns: int = Field(description="turns played, a winning pass chain included")
    headers: dict[str, str]


class GameList(BaseModel):
    run: str
    iteration: int
    games: list[GameSummary]


class SearchedMove(BaseModel):
    move: str = Field(description="an atomic action, as in the record's annotations")
    share: float = Field(description="its share of the root's visits")


class FrameSearch(BaseModel):
    value: float = Field(description="the search's root value, from the side to move's view")
    top: list[SearchedMove] = Field(description="the most visited actions, most visited first")
    played: str = Field(description="the action the game played from this position")


class Frame(BaseModel):
    token: str | None = Field(description="the turn that led here, as in the record; null at the start")
    mover: int | None
    kind: Literal["start", "knight", "pass", "other"]
    path: list[str] = Field(description="squares of the turn in order; for a pass chain, the ball's path")
    pieces: list[list[str]]
    balls: list[str]
    eligible: list[str]
    turn: int
    to_move: int
    is_terminal: bool
    winner: int | None
    search: FrameSearch | None = Field(
        None, description="what the search thought here before the next turn; null where not recorded"
    )
    chain_searches: list[FrameSearch] = Field(
        default_factory=list, description="the searches inside the next turn's pass chain, after each pass"
    )


class GameReplay(BaseModel):
    run: str
    iteration: int
    index: int
    result: str
    headers: dict[str, str]
    frames: list[Frame]


def _library(request: Request) -> ReplayLibrary:
    return request.app.state.replays


def _read(read, *args):
    """A library read, its errors as HTTP errors: a missing run, iteration or game is 404,
    a record on disk that cannot be read is 500."""
    try:
        return read(*args)
    except LookupError as error:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(error)) from None
    except ValueError as error:
        raise HTTPException(status.HTTP_500_INTERNAL_SERVER_ERROR, str(error)) from None


@router.get("", response_model=GameLibrary)
def list_runs(request: Request) -> dict:
    """Runs and iterations with self-play games on this server's disk (a run serving its
    own dashboard, or `razzle serve` next to a run folder)."""
    library = _library(request)
    return {"runs": [{"run": run, "iterations": library.iterations(run)} for run in sorted(library.folders)]}


@router.get("/{run}/{iteration}", response_model=GameList, responses=problems(_404="no such run or iteration"))
def list_games(run: RunName, iteration: IterationNumber, request: Request) -> dict:
    outlines = _read(_library(request).outlines, run, iteration)
    games = [
        {"index": i, "result": outline.result, "turns": outline.turns, "headers": outline.headers}
        for i, outline in enumerate(outlines)
    ]
    return {"run": run, "iteration": iteration, "games": games}


@router.get("/{run}/{iteration}/{index}", response_model=GameReplay, responses=problems(_404="no such game"))
def replay_game(run: RunName, iteration: IterationNumber, index: IterationNumber, request: Request) -> dict:
    """Every position of one game, turn by turn, for the play page's replay view."""
    record = _read(_library(request).record, run, iteration, index)
    replayed = frames(record)
    final = replayed[-1]
    return {
        "run": run,
        "iteration": iteration,
        "index": index,
        "result": _result(final),
        "headers": record.headers,
        "frames": replayed,
    }
