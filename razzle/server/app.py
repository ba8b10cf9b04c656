"""The FastAPI application: the training API, the game API and the two web pages."""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from contextlib import asynccontextmanager
from functools import lru_cache
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from fastapi import Depends, FastAPI, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from razzle.server import game_api, replays, training_api
from razzle.server.ai import AIPlayer, default_player
from razzle.server.games import GameTable
from razzle.server.limits import BodyLimit
from razzle.server.progress import ProgressBoard
from razzle.server.schemas import INVALID_REQUEST, Health
from razzle.server.store import MetricsStore
from razzle.metric_targets import DEFAULT_TARGETS, Targets, load_targets

STATIC = Path(__file__).parent / "static"
DEFAULT_MODEL_LIMIT = 512 << 20
DEFAULT_AI_MOVES = 2  # AI searches at once; each keeps a CPU core busy
HTTP_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")


def razzle_version() -> str:
    try:
        return version("razzle")
    except PackageNotFoundError:
        return "unknown"


async def _validation_error(_request: Request, error: RequestValidationError) -> JSONResponse:
    """FastAPI's 422 without echoing the input back: the input may be NaN (not valid JSON)
    or a whole oversized document."""
    detail = [{"loc": list(e["loc"]), "msg": e["msg"], "type": e["type"]} for e in error.errors()]
    return JSONResponse({"detail": detail}, status_code=422)


async def _http_error(request: Request, error: StarletteHTTPException) -> JSONResponse:
    """Starlette's 405 names only the first route of the path in `Allow` (POST for
    /training/metrics, which also answers GET); name every method the path answers."""
    if error.status_code == 405:
        allowed = [
            method
            for method in HTTP_METHODS
            if any(route.matches({**request.scope, "method": method})[0] == Match.FULL for route in request.app.routes)
        ]
        error.headers = {**(error.headers or {}), "Allow": ", ".join(allowed)}
    return await http_exception_handler(request, error)


def refuse_unknown_query(request: Request) -> None:
    """A misspelt query parameter is refused, not ignored: `DELETE /training/clear?rn=x`
    would otherwise clear every run."""
    operation = request.app.openapi()["paths"][request.scope["route"].path][request.method.lower()]
    known = {param["name"] for param in operation.get("parameters", []) if param["in"] == "query"}
    unknown = sorted(set(request.query_params) - known)
    if unknown:
        takes = ", ".join(sorted(known)) or "none"
        message = f"unknown query parameter (this endpoint takes: {takes})"
        raise RequestValidationError(
            [{"loc": ("query", name), "msg": message, "type": "extra_forbidden"} for name in unknown]
        )


def create_app(
    store: MetricsStore,
    token: str | None = None,
    model_path: str | None = None,
    ai_factory: Callable[[str | None], AIPlayer] = default_player,
    max_model_bytes: int = DEFAULT_MODEL_LIMIT,
    progress: ProgressBoard | None = None,
    targets: Targets | None = None,
    replay_folders: Mapping[str, str | Path] | None = None,
    max_ai_moves: int = DEFAULT_AI_MOVES,
) -> FastAPI:
    """The app over `store`. The AI plays with `model_path`, or else with the newest model
    in the store at the time a game starts, so the page follows a training run. `progress`
    is the board of runs' progress reports (a run serving its own dashboard passes its
    board; otherwise the app keeps one fed by POST /training/progress). `targets`: the
    training plan's targets and red flags, by default conf/targets/default.yaml (none when
    that file is not there, as in an installed package without the repository).
    `replay_folders`: run name -> its replay folder, whose self-play games the play page
    lists and replays."""

    @asynccontextmanager
    async def lifespan(_app: FastAPI):
        yield
        store.close()

    app = FastAPI(
        title="razzle",
        version=razzle_version(),
        summary="Training metrics, model files and play against the AI for Razzle Dazzle",
        lifespan=lifespan,
    )
    app.state.store = store
    app.state.token = token or None
    app.state.games = GameTable()
    app.state.progress = progress if progress is not None else ProgressBoard()
    if targets is None:
        targets = load_targets(DEFAULT_TARGETS) if DEFAULT_TARGETS.is_file() else Targets()
    app.state.targets = targets
    app.state.replays = replays.ReplayLibrary(replay_folders)
    app.state.ai_slots = threading.BoundedSemaphore(max_ai_moves)
    player_for = lru_cache(maxsize=4)(ai_factory)

    def ai_for_new_game() -> tuple[AIPlayer, str]:
        if model_path:
            return player_for(model_path), Path(model_path).name
        latest = store.latest_model()
        if latest is None:
            return player_for(None), "no model yet"
        path, info = store.model_file(latest.version, latest.run)
        return player_for(str(path)), f"{info.run} {info.version}"

    app.state.ai_for_new_game = ai_for_new_game
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_middleware(BodyLimit, model_limit=max_model_bytes)
    for router in (training_api.router, game_api.router, replays.router):
        app.include_router(router, dependencies=[Depends(refuse_unknown_query)], responses=INVALID_REQUEST)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/health", response_model=Health, tags=["server"])
    def health(request: Request) -> dict:
        return {
            "status": "ok",
            "version": app.version,
            "database": store.display_url,
            "writes_need_token": request.app.state.token is not None,
        }

    @app.get("/", include_in_schema=False)
    def play_page() -> FileResponse:
        return FileResponse(STATIC / "play.html")

    @app.get("/dashboard", include_in_schema=False)
    def dashboard_page() -> FileResponse:
        return FileResponse(STATIC / "dashboard.html")

    @app.get("/training", include_in_schema=False)
    def training_page() -> RedirectResponse:
        return RedirectResponse("/dashboard")

    return app
