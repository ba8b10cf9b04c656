"""The training API: metrics per iteration, model files, the dashboard summary."""

from __future__ import annotations

import hmac
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, File, Form, HTTPException, Path, Query, Request, UploadFile, status
from fastapi.responses import FileResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from razzle.metric_names import KNOWN_METRICS, METRIC_DESCRIPTIONS
from razzle.server.names import MAX_ITERATION, OPEN_FAMILIES
from razzle.server.schemas import (
    BODY_WRITE_PROBLEMS,
    LABEL_PATTERN,
    WRITE_PROBLEMS,
    Cleared,
    Dashboard,
    LatestMetrics,
    LatestModel,
    MetricNames,
    MetricsPage,
    MetricsPost,
    MetricsStored,
    ModelList,
    ModelStored,
    ProgressPost,
    RunProgress,
    TargetsOut,
    problems,
)
from razzle.server.progress import ProgressBoard, ProgressReport
from razzle.server.store import MetricsStore, ModelInfo, StoreInputError, iso_time
from razzle.metric_targets import Targets

MAX_PAGE = 10_000
MAX_OFFSET = 2**31 - 1  # larger numbers than the database's integers never reach it
router = APIRouter(prefix="/training", tags=["training"])
_bearer = HTTPBearer(auto_error=False, description="needed for writes when the server has a token")


def get_store(request: Request) -> MetricsStore:
    return request.app.state.store


def require_token(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> None:
    """Writes need `Authorization: Bearer TOKEN` when the server was started with a token."""
    token = request.app.state.token
    if token is None:
        return
    if credentials is None:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "this server needs 'Authorization: Bearer TOKEN' for writes",
            headers={"WWW-Authenticate": "Bearer"},
        )
    if not hmac.compare_digest(credentials.credentials.encode(), token.encode()):
        raise HTTPException(status.HTTP_403_FORBIDDEN, "wrong token")


def get_progress(request: Request) -> ProgressBoard:
    return request.app.state.progress


def get_targets(request: Request) -> Targets:
    return request.app.state.targets


Store = Annotated[MetricsStore, Depends(get_store)]
PlanTargets = Annotated[Targets, Depends(get_targets)]
Progress = Annotated[ProgressBoard, Depends(get_progress)]
Writer = Depends(require_token)
RunFilter = Annotated[str | None, Query(pattern=LABEL_PATTERN, description="only this run")]


def _unprocessable(error: StoreInputError, *where: str) -> HTTPException:
    """A refusal of the store in the same list form as FastAPI's own 422s (the documented one)."""
    detail = [{"loc": ["body", *where], "msg": problem, "type": "value_error"} for problem in error.problems]
    return HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, detail)


def model_out(info: ModelInfo) -> dict:
    return {**info.as_dict(), "download_url": f"/training/models/{info.version}/download?run={info.run}"}


@router.post("/metrics", response_model=MetricsStored, dependencies=[Writer], responses=BODY_WRITE_PROBLEMS)
def post_metrics(body: MetricsPost, store: Store) -> dict:
    """Record one iteration's metrics. Posting an iteration again merges into it, so a
    retried request never duplicates anything."""
    reliability = None
    if body.reliability is not None:
        reliability = [(b.mean_value, b.mean_outcome, b.count) for b in body.reliability]
    try:
        created = store.record_metrics(body.run, body.iteration, body.metrics, reliability, body.worker)
    except StoreInputError as error:
        raise _unprocessable(error) from None
    return {"run": body.run, "iteration": body.iteration, "created": created, "names": sorted(body.metrics)}


@router.get("/metrics", response_model=MetricsPage, response_model_exclude_unset=True)
def list_metrics(
    store: Store,
    run: RunFilter = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 1000,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
    min_iteration: Annotated[int | None, Query(ge=0, le=MAX_ITERATION)] = None,
    max_iteration: Annotated[int | None, Query(ge=0, le=MAX_ITERATION)] = None,
    order: Literal["asc", "desc"] = "asc",
) -> dict:
    """Entries in the order they were first recorded (`order=desc`: newest first)."""
    entries, total = store.list_metrics(run, limit, offset, min_iteration, max_iteration, order == "desc")
    return {"metrics": entries, "total": total, "limit": limit, "offset": offset}


@router.get("/metrics/latest", response_model=LatestMetrics, response_model_exclude_unset=True)
def latest_metrics(store: Store, run: RunFilter = None) -> dict:
    """The newest entry, its fields at the top level (`jq "{iteration, loss_total}"` reads
    them) and the same entry under `metrics`."""
    entry = store.latest_metrics(run)
    return {**entry, "metrics": entry} if entry else {"metrics": None}


@router.get("/metric-names", response_model=MetricNames)
def metric_names() -> dict:
    return {
        "known": {name: METRIC_DESCRIPTIONS.get(name, "") for name in sorted(KNOWN_METRICS)},
        "open_families": [f"{prefix}*" for prefix in OPEN_FAMILIES],
        "pattern": "^[a-z][a-z0-9_]{0,63}$",
    }


def progress_out(report: ProgressReport, now: float, window_s: float) -> dict:
    age = max(0.0, now - report.reported_at)
    return {
        **report.as_dict(),
        "reported_at": iso_time(report.reported_at),
        "age_s": round(age, 1),
        "fresh": age <= window_s,
    }


def run_targets(store: MetricsStore, targets: Targets, run: str) -> dict | None:
    latest = store.latest_metrics(run)
    if latest is None:
        return None
    return {"run": run, "iteration": latest["iteration"], "metrics": targets.assess(latest["iteration"], latest)}


@router.get("/targets", response_model=TargetsOut)
def plan_targets(targets: PlanTargets) -> dict:
    """The training plan's targets and red flags per phase of training, which the
    dashboard draws on its charts and `/training/dashboard` assesses."""
    return targets.as_dict()


@router.post("/progress", response_model=RunProgress, dependencies=[Writer], responses=BODY_WRITE_PROBLEMS)
def post_progress(body: ProgressPost, board: Progress) -> dict:
    """Where a run is now (iteration, phase, done of total), so the dashboard shows a run
    at work before its first iteration ends. Progress is ephemeral: the server keeps the
    newest report per run in memory and never stores it in the database."""
    actors = [actor.model_dump() for actor in body.actors]
    report = board.report(body.run, body.iteration, body.phase, body.done, body.total, actors)
    return progress_out(report, board.now(), float("inf"))


@router.get("/dashboard", response_model=Dashboard, response_model_exclude_unset=True)
def dashboard(store: Store, board: Progress, targets: PlanTargets) -> dict:
    """Everything the dashboard's header shows, in one request. A fresh progress report
    (younger than the activity window) makes the status active."""
    runs = store.runs()
    latest_model = store.latest_model()
    activity = store.activity()
    now = board.now()
    progress = [progress_out(r, now, activity["active_window_s"]) for r in board.snapshot()]
    if any(p["fresh"] for p in progress):
        activity["status"] = "active"
    return {
        **activity,
        "progress": progress,
        "targets": [assessed for run in runs if (assessed := run_targets(store, targets, run["run"]))],
        "runs": runs,
        "iterations": sum(r["iterations"] for r in runs),
        "games": sum(r["games"] for r in runs),
        "positions": sum(r["positions"] for r in runs),
        "latest_metrics": store.latest_metrics(),
        "latest_model": model_out(latest_model) if latest_model else None,
        "models": len(store.list_models()),
        "workers": store.workers(),
    }


@router.delete("/clear", response_model=Cleared, dependencies=[Writer], responses=WRITE_PROBLEMS)
def clear(store: Store, run: RunFilter = None) -> dict:
    """Delete one run's metrics and models (`?run=`), or everything."""
    return store.clear(run)


@router.post("/models", response_model=ModelStored, dependencies=[Writer], responses=BODY_WRITE_PROBLEMS)
def upload_model(
    store: Store,
    file: Annotated[UploadFile, File(description="an exported model file (iter_NNNN.pt)")],
    run: Annotated[str, Form(pattern=LABEL_PATTERN)],
    version: Annotated[str, Form(pattern=LABEL_PATTERN, examples=["iter_0007"])],
    iteration: Annotated[int, Form(ge=0, le=MAX_ITERATION)],
    worker: Annotated[str | None, Form(pattern=LABEL_PATTERN)] = None,
) -> dict:
    """Store a model file; it must load as a razzle model. Uploading the same run and
    version again replaces it."""
    try:
        info, created = store.add_model(run, version, iteration, file.file, worker)
    except StoreInputError as error:
        raise _unprocessable(error, "file") from None
    return {"model": model_out(info), "created": created}


@router.get("/models", response_model=ModelList)
def list_models(store: Store, run: RunFilter = None) -> dict:
    models = [model_out(m) for m in store.list_models(run)]
    return {"models": models, "total": len(models)}


@router.get("/models/latest", response_model=LatestModel)
def latest_model(store: Store, run: RunFilter = None) -> dict:
    info = store.latest_model(run)
    return {"model": model_out(info) if info else None}


@router.get(
    "/models/{version}/download",
    response_class=FileResponse,
    responses={
        200: {"content": {"application/octet-stream": {}}, "description": "the model file"},
        **problems(_404="no such version"),
    },
)
def download_model(
    store: Store,
    version: Annotated[str, Path(pattern=LABEL_PATTERN, examples=["iter_0007"])],
    run: RunFilter = None,
) -> FileResponse:
    """The model file of `version` (of `run`, or its most recent upload of any run)."""
    found = store.model_file(version, run)
    if found is None:
        where = f" of run {run!r}" if run else ""
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no model version {version!r}{where}")
    path, info = found
    return FileResponse(path, media_type="application/octet-stream", filename=f"{info.run}_{info.version}.pt")
