"""Request and response models of the API; they are what the OpenAPI schema shows.

Requests are strict: a string where a number belongs, a boolean, NaN or infinity, an
unknown top-level key or an unknown metric name is a 422 naming the field, never a silent
conversion. Metric entries list every known metric as an optional field (so the schema
documents them) and allow the open `eval_*` and `x_*` families as extra keys.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    Strict,
    create_model,
    field_validator,
    model_validator,
)

from razzle.metric_names import KNOWN_METRICS, METRIC_DESCRIPTIONS
from razzle.server.names import MAX_ITERATION, MAX_METRICS_PER_POST, OPEN_FAMILIES, RELIABILITY_BINS, metric_name_problem
from razzle.server.progress import Phase

MAX_SIMULATIONS = 4096
MAX_INT32 = 2**31 - 1  # the largest value of the database's INTEGER columns


def _integral(value: object) -> object:
    """JSON Schema counts 597.0 as an integer, so the API does too; true and "597" stay refused."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


LABEL_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$"
_FAMILY_PATTERNS = [f"{re.escape(family)}[a-z0-9_]{{1,{64 - len(family)}}}" for family in OPEN_FAMILIES]
METRIC_NAME_PATTERN = "^(?:" + "|".join(_FAMILY_PATTERNS + sorted(KNOWN_METRICS)) + ")$"
Label = Annotated[str, Field(pattern=LABEL_PATTERN, examples=["quartic_on"])]


def whole_number(ge: int, le: int) -> type[int]:
    """An integer in [ge, le]; 597.0 counts as 597 (the bounds stay in the schema)."""
    return Annotated[int, Strict(), Field(ge=ge, le=le), BeforeValidator(_integral)]


Iteration = whole_number(0, MAX_ITERATION)
FiniteNumber = Annotated[float, Strict(), Field(allow_inf_nan=False)]
UnitInterval = Annotated[float, Strict(), Field(ge=-1, le=1, allow_inf_nan=False)]


class StrictModel(BaseModel):
    """Unknown keys are refused: a misspelt field must not be dropped silently."""

    model_config = ConfigDict(extra="forbid")


class Problem(BaseModel):
    """An error: what was wrong, in words."""

    detail: str


class InvalidField(BaseModel):
    loc: list[str | int] = Field(description="where: body, query or path, then the field")
    msg: str
    type: str


class InvalidRequest(BaseModel):
    """A 422: every field that was wrong, and why."""

    detail: list[InvalidField]


INVALID_REQUEST = {422: {"model": InvalidRequest, "description": "invalid fields, each with the reason"}}


def problems(**reasons: str) -> dict:
    """OpenAPI `responses` for error statuses, e.g. problems(_404="no such version")."""
    return {int(code.lstrip("_")): {"model": Problem, "description": text} for code, text in reasons.items()}


UNREADABLE_BODY = "a body that cannot be read (not UTF-8), or a malformed Content-Length"
WRITE_PROBLEMS = problems(
    _401="the server has a token and the request has none",
    _403="wrong token",
    _411="no Content-Length",
    _413="body over the size limit",
)
BODY_WRITE_PROBLEMS = {**WRITE_PROBLEMS, **problems(_400=UNREADABLE_BODY)}


class ReliabilityBin(StrictModel):
    """One bin of the value head's reliability diagram (bins of predicted value)."""

    mean_value: UnitInterval | None = Field(description="mean predicted value in the bin (null when empty)")
    mean_outcome: UnitInterval | None = Field(description="mean game outcome in the bin (null when empty)")
    count: whole_number(0, MAX_INT32)

    model_config = ConfigDict(
        json_schema_extra={
            "description": "Both means are numbers when the bin holds positions (count > 0).",
            "anyOf": [
                {"properties": {"count": {"const": 0}}},
                {"properties": {"mean_value": {"type": "number"}, "mean_outcome": {"type": "number"}}},
            ],
        }
    )

    @model_validator(mode="after")
    def _means_of_a_filled_bin(self) -> ReliabilityBin:
        if self.count > 0 and (self.mean_value is None or self.mean_outcome is None):
            raise ValueError("a bin with count > 0 needs both mean_value and mean_outcome")
        return self


class MetricsPost(StrictModel):
    run: Label
    iteration: Iteration
    metrics: dict[str, FiniteNumber] = Field(
        default_factory=dict,
        max_length=MAX_METRICS_PER_POST,
        description="name -> finite number; names: GET /training/metric-names",
        examples=[{"loss_total": 2.31, "policy_top1_accuracy": 0.42}],
        json_schema_extra={"propertyNames": {"pattern": METRIC_NAME_PATTERN}},
    )
    reliability: list[ReliabilityBin] | None = Field(
        default=None, min_length=RELIABILITY_BINS, max_length=RELIABILITY_BINS
    )
    worker: Label | None = Field(default=None, description="who sent it (host-pid of a trainer or worker)")

    model_config = ConfigDict(
        json_schema_extra={
            "description": "At least one metric, or a reliability diagram, or both.",
            "anyOf": [
                {"required": ["metrics"], "properties": {"metrics": {"minProperties": 1}}},
                {"required": ["reliability"], "properties": {"reliability": {"type": "array"}}},
            ],
        }
    )

    @model_validator(mode="after")
    def _something_to_store(self) -> MetricsPost:
        if not self.metrics and self.reliability is None:
            raise ValueError("nothing to store: no metrics and no reliability diagram")
        return self

    @field_validator("metrics")
    @classmethod
    def _known_names(cls, metrics: dict[str, float]) -> dict[str, float]:
        problems = [p for p in map(metric_name_problem, metrics) if p]
        if problems:
            raise ValueError("; ".join(problems))
        return metrics


class MetricsStored(BaseModel):
    run: str
    iteration: int
    created: bool = Field(description="false when the iteration existed and these metrics were merged into it")
    names: list[str] = Field(description="the metric names stored by this request")


def _entry_fields(required: bool) -> dict:
    """The fields of a flat metrics entry; `required=False` where the entry may be absent."""

    def bookkeeping(kind: type, description: str | None = None) -> tuple:
        if required:
            return kind, Field(..., description=description)
        return kind | None, Field(None, description=description)

    return {
        "run": bookkeeping(str),
        "iteration": bookkeeping(int),
        "timestamp": bookkeeping(str, "when the iteration was first recorded (ISO 8601, UTC)"),
        "worker": (str | None, None),
        "reliability": (list[ReliabilityBin] | None, None),
        **{
            name: (float | None, Field(default=None, description=METRIC_DESCRIPTIONS.get(name)))
            for name in sorted(KNOWN_METRICS)
        },
    }


MetricsEntry = create_model(
    "MetricsEntry",
    __config__=ConfigDict(extra="allow"),
    __doc__="One iteration of one run, flat: bookkeeping fields plus every metric recorded for it.",
    **_entry_fields(required=True),
)


class MetricsPage(BaseModel):
    metrics: list[MetricsEntry]
    total: int = Field(description="entries matching the filters, ignoring limit and offset")
    limit: int
    offset: int


LatestMetrics = create_model(
    "LatestMetrics",
    __config__=ConfigDict(extra="allow"),
    __doc__=(
        "The newest entry's fields at the top level (absent while nothing is stored), "
        "and the same entry nested under `metrics` (null then)."
    ),
    **_entry_fields(required=False),
    metrics=(MetricsEntry | None, ...),
)


class MetricNames(BaseModel):
    known: dict[str, str] = Field(description="accepted names and what they measure")
    open_families: list[str] = Field(description="prefixes accepted for any further name")
    pattern: str


class ModelOut(BaseModel):
    run: str
    version: str
    iteration: int
    sha256: str
    size: int = Field(description="bytes")
    uploaded_at: str
    worker: str | None
    download_url: str


class ModelStored(BaseModel):
    model: ModelOut
    created: bool = Field(description="false when this (run, version) existed and its file was replaced")


class ModelList(BaseModel):
    models: list[ModelOut]
    total: int


class LatestModel(BaseModel):
    model: ModelOut | None


class RunSummary(BaseModel):
    run: str
    iterations: int
    first_iteration: int
    last_iteration: int
    last_update: str
    games: int
    positions: int
    models: int


class WorkerSeen(BaseModel):
    name: str
    first_seen: str
    last_seen: str
    posts: int


class ActorProgress(StrictModel):
    """A self-play actor of the run (razzle.selfplay.status.ActorStatus)."""

    actor: whole_number(0, MAX_INT32)
    node: Annotated[str, Field(max_length=255, description="the address of the machine it runs on")]
    state: Literal["starting", "restarting", "idle", "playing"]
    games: whole_number(0, MAX_INT32) = Field(description="games it finished over the run")
    games_per_s: Annotated[float, Strict(), Field(ge=0, allow_inf_nan=False)] = Field(
        description="those games over its time spent playing"
    )
    restarts: whole_number(0, MAX_INT32) = Field(description="how often it died and was started again")


class RunProgress(BaseModel):
    """A run's newest progress report (ephemeral: kept in the server's memory only)."""

    run: str
    iteration: int = Field(description="the iteration in progress")
    phase: Phase
    done: int
    total: int
    actors: list[ActorProgress] = Field(default_factory=list, description="its self-play actors, if it has any")
    reported_at: str = Field(description="when the server received it (ISO 8601, UTC)")
    age_s: float = Field(description="seconds since then")
    fresh: bool = Field(description="younger than active_window_s: the run is working")


class TargetBand(BaseModel):
    metric: str
    target: float
    red_flag: float
    lower_is_better: bool


class TargetPhase(BaseModel):
    name: str
    first_iteration: int
    last_iteration: int | None = Field(description="null: until the end of the run")
    bands: list[TargetBand]


class TargetsOut(BaseModel):
    """The training plan's targets and red flags per phase (conf/targets/default.yaml)."""

    phases: list[TargetPhase]


class MetricStatus(TargetBand):
    phase: str
    value: float
    status: Literal["ok", "watch", "red_flag"]


class RunTargets(BaseModel):
    run: str
    iteration: int = Field(description="the run's latest recorded iteration, which is assessed")
    metrics: list[MetricStatus]


class Dashboard(BaseModel):
    status: Literal["active", "idle"] = Field(
        description="active while updates arrive at the run's usual pace or a fresh progress report exists"
    )
    last_update: str | None
    active_window_s: float
    runs: list[RunSummary]
    iterations: int
    games: int
    positions: int
    latest_metrics: MetricsEntry | None
    latest_model: ModelOut | None
    models: int
    workers: list[WorkerSeen]
    progress: list[RunProgress] = Field(default_factory=list, description="newest report per run, newest first")
    targets: list[RunTargets] = Field(
        default_factory=list, description="per run, its latest iteration's metrics against the plan's targets"
    )


class ProgressPost(StrictModel):
    """Where a run is now: `done` of `total` units of `phase` in `iteration` (games for
    self-play and evaluation; `finished`: the iteration is complete)."""

    run: Label
    iteration: Iteration
    phase: Phase
    done: whole_number(0, MAX_INT32)
    total: whole_number(0, MAX_INT32)
    actors: list[ActorProgress] = Field(default_factory=list, max_length=4096, description="self-play actors")

    @model_validator(mode="after")
    def _done_within_total(self) -> ProgressPost:
        if self.done > self.total:
            raise ValueError(f"done ({self.done}) is more than total ({self.total})")
        return self


class Cleared(BaseModel):
    runs: list[str] = Field(description="runs that had something deleted")
    iterations: int
    metric_values: int
    reliability_bins: int
    models: int
    model_files: int
    workers: int = Field(0, description="only a full clear forgets the workers")


class Health(BaseModel):
    status: Literal["ok"]
    version: str
    database: str = Field(description="the SQLAlchemy URL, password hidden")
    writes_need_token: bool


class NewGame(StrictModel):
    human_side: whole_number(0, 1) = Field(
        0, description="0: you play Player 1 (x, moves first); 1: Player 2"
    )
    simulations: whole_number(1, MAX_SIMULATIONS) = Field(200, description="AI strength")


class PlayAction(StrictModel):
    action: Annotated[str, Field(max_length=16, examples=["b1-c3", "d1-e1", "end"])]


class GameView(BaseModel):
    """Everything the play page draws: pieces, balls, eligibility, whose turn, legal moves."""

    id: str
    human_side: int
    simulations: int
    ai: str = Field(description="which network the AI uses")
    to_move: int
    turn: int
    mid_chain: bool
    forced: bool
    is_terminal: bool
    winner: int | None
    result: int | None = Field(description="+1 / -1 / 0 from Player 1's view once over")
    status: str
    pieces: list[list[str]] = Field(description="[Player 1's squares, Player 2's squares]")
    balls: list[str]
    eligible: list[str] = Field(description="squares of pieces (either side) that may receive a pass")
    last_knight: str | None
    legal_moves: list[str]
    record: list[str] = Field(description="one token per turn: a knight move or a pass chain's path")
    actions: list[str]
    last_ai_actions: list[str]
