"""Request and response models of the API; they are what the OpenAPI schema shows.

Requests are strict: a string where a number belongs, a boolean, NaN or infinity, an
unknown top-level key or an unknown metric name is a 422 naming the field, never a silent
conversion. Metric entries list every known metric as an optional field (so the schema
documents them) and allow the open `eval_*` and `x_*` families as extra keys.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, Strict, create_model, field_validator, model_validator

from razzle.metric_names import KNOWN_METRICS, METRIC_DESCRIPTIONS
from razzle.server.names import MAX_ITERATION, MAX_METRICS_PER_POST, RELIABILITY_BINS, metric_name_problem
from razzle.server.progress import Phase

LABEL_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$"
Label = Annotated[str, Field(pattern=LABEL_PATTERN, examples=["quartic_on"])]
Iteration = Annotated[int, Strict(), Field(ge=0, le=MAX_ITERATION)]
FiniteNumber = Annotated[float, Strict(), Field(allow_inf_nan=False)]
UnitInterval = Annotated[float, Strict(), Field(ge=-1, le=1, allow_inf_nan=False)]


class StrictModel(BaseModel):
    """Unknown keys are refused: a misspelt field must not be dropped silently."""

    model_config = ConfigDict(extra="forbid")


class Problem(BaseModel):
    """An error: what was wrong, in words."""

    detail: str


def problems(**reasons: str) -> dict:
    """OpenAPI `responses` for error statuses, e.g. problems(_404="no such version")."""
    return {int(code.lstrip("_")): {"model": Problem, "description": text} for code, text in reasons.items()}


WRITE_PROBLEMS = problems(
    _401="the server has a token and the request has none",
    _403="wrong token",
    _411="no Content-Length",
    _413="body over the size limit",
)


class ReliabilityBin(StrictModel):
    """One bin of the value head's reliability diagram (bins of predicted value)."""

    mean_value: UnitInterval | None = Field(description="mean predicted value in the bin (null when empty)")
    mean_outcome: UnitInterval | None = Field(description="mean game outcome in the bin (null when empty)")
    count: Annotated[int, Strict(), Field(ge=0)]


class MetricsPost(StrictModel):
    run: Label
    iteration: Iteration
    metrics: dict[str, FiniteNumber] = Field(
        default_factory=dict,
        max_length=MAX_METRICS_PER_POST,
        description="name -> finite number; names: GET /training/metric-names",
        examples=[{"loss_total": 2.31, "policy_top1_accuracy": 0.42}],
    )
    reliability: list[ReliabilityBin] | None = Field(
        default=None, min_length=RELIABILITY_BINS, max_length=RELIABILITY_BINS
    )
    worker: Label | None = Field(default=None, description="who sent it (host-pid of a trainer or worker)")

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


MetricsEntry = create_model(
    "MetricsEntry",
    __config__=ConfigDict(extra="allow"),
    __doc__="One iteration of one run, flat: bookkeeping fields plus every metric recorded for it.",
    run=(str, ...),
    iteration=(int, ...),
    timestamp=(str, Field(description="when the iteration was first recorded (ISO 8601, UTC)")),
    worker=(str | None, None),
    reliability=(list[ReliabilityBin] | None, None),
    **{
        name: (float | None, Field(default=None, description=METRIC_DESCRIPTIONS.get(name)))
        for name in sorted(KNOWN_METRICS)
    },
)


class MetricsPage(BaseModel):
    metrics: list[MetricsEntry]
    total: int = Field(description="entries matching the filters, ignoring limit and offset")
    limit: int
    offset: int


class LatestMetrics(BaseModel):
    metrics: MetricsEntry | None


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


class RunProgress(BaseModel):
    """A run's newest progress report (ephemeral: kept in the server's memory only)."""

    run: str
    iteration: int = Field(description="the iteration in progress")
    phase: Phase
    done: int
    total: int
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
    done: Annotated[int, Strict(), Field(ge=0)]
    total: Annotated[int, Strict(), Field(ge=0)]

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
    human_side: Literal[0, 1] = Field(0, description="0: you play Player 1 (x, moves first); 1: Player 2")
    simulations: Annotated[int, Strict(), Field(ge=1, le=4096)] = Field(200, description="AI strength")


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
