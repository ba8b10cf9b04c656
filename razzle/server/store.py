"""The metrics and model store: one SQLAlchemy database plus a folder of model files.

Both the server and a training run without a server write through this class, so every
rule about what may be stored is checked here, once. Writes are single transactions and
idempotent: posting the same iteration again merges its metrics (a retried request never
duplicates), and uploading the same model version again replaces it. Model files are kept
by content hash: a file is fully written and checked before it gets its final name, and the
database row that points to it is committed last, so a killed process never leaves a row
pointing at a half-written file, and no run name or version ever becomes part of a path.
Opening a store brings its database to the current schema first (razzle.server.schema_version).
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import itertools
import os
import statistics
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import BinaryIO, TypeVar

from sqlalchemy import (
    BigInteger,
    Float,
    ForeignKey,
    Integer,
    String,
    UniqueConstraint,
    create_engine,
    delete,
    event,
    func,
    select,
)
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from razzle.model.io import ModelFileError, load_model_file
from razzle.server.names import (
    iteration_problem,
    label_problem,
    metrics_problems,
    reliability_problems,
)
from razzle.server.schema_version import upgrade_to_head

BOOKKEEPING_SUMS = ("games", "positions")
MIN_ACTIVE_WINDOW_S = 300.0
T = TypeVar("T")


class StoreInputError(ValueError):
    """Input the store refuses; `problems` lists every reason, the message joins them."""

    def __init__(self, problems: Sequence[str]):
        self.problems = list(problems)
        super().__init__("; ".join(self.problems))


class Base(DeclarativeBase):
    pass


class IterationRow(Base):
    """One (run, iteration): its metric values and reliability bins hang off it."""

    __tablename__ = "iterations"
    __table_args__ = (UniqueConstraint("run", "iteration"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    run: Mapped[str] = mapped_column(String(128), index=True)
    iteration: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[float] = mapped_column(Float)
    updated_at: Mapped[float] = mapped_column(Float, index=True)
    worker: Mapped[str | None] = mapped_column(String(128))


class MetricValue(Base):
    __tablename__ = "metric_values"
    iteration_id: Mapped[int] = mapped_column(ForeignKey("iterations.id", ondelete="CASCADE"), primary_key=True)
    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[float] = mapped_column(Float)


class ReliabilityBin(Base):
    __tablename__ = "reliability_bins"
    iteration_id: Mapped[int] = mapped_column(ForeignKey("iterations.id", ondelete="CASCADE"), primary_key=True)
    bin: Mapped[int] = mapped_column(Integer, primary_key=True)
    mean_value: Mapped[float | None] = mapped_column(Float)
    mean_outcome: Mapped[float | None] = mapped_column(Float)
    count: Mapped[int] = mapped_column(Integer)


class ModelRow(Base):
    __tablename__ = "models"
    __table_args__ = (UniqueConstraint("run", "version"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    run: Mapped[str] = mapped_column(String(128), index=True)
    version: Mapped[str] = mapped_column(String(128), index=True)
    iteration: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"))
    uploaded_at: Mapped[float] = mapped_column(Float)
    worker: Mapped[str | None] = mapped_column(String(128))


class WorkerRow(Base):
    __tablename__ = "workers"
    name: Mapped[str] = mapped_column(String(128), primary_key=True)
    first_seen: Mapped[float] = mapped_column(Float)
    last_seen: Mapped[float] = mapped_column(Float)
    posts: Mapped[int] = mapped_column(Integer)


@dataclass(frozen=True)
class ModelInfo:
    run: str
    version: str
    iteration: int
    sha256: str
    size: int
    uploaded_at: str
    worker: str | None

    @classmethod
    def from_row(cls, row: ModelRow) -> ModelInfo:
        return cls(row.run, row.version, row.iteration, row.sha256, row.size, iso_time(row.uploaded_at), row.worker)

    def as_dict(self) -> dict:
        return asdict(self)


def iso_time(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def database_url(db: str | os.PathLike) -> str:
    """A SQLAlchemy URL as given, or a plain file path turned into an absolute SQLite URL."""
    text = os.fspath(db)
    if "://" in text:
        return text
    return f"sqlite:///{Path(text).expanduser().resolve()}"


def default_models_dir(url: str) -> Path:
    """Model files live next to a SQLite file (`metrics.db` -> `metrics-models/`)."""
    database = make_url(url).database
    if make_url(url).get_backend_name() == "sqlite" and database and database != ":memory:":
        path = Path(database)
        return path.with_name(f"{path.stem}-models")
    return Path("razzle-models").resolve()


class MetricsStore:
    """Metrics per (run, iteration), reliability diagrams, model files and the workers seen."""

    def __init__(self, db: str | os.PathLike, models_dir: str | os.PathLike | None = None):
        self.url = database_url(db)
        self.models_dir = Path(models_dir) if models_dir else default_models_dir(self.url)
        self.engine = _create_engine(self.url)
        try:
            self._write(lambda session: upgrade_to_head(session.connection(), f"the database {self.display_url}"))
        except BaseException:
            self.engine.dispose()
            raise
        self.models_dir.mkdir(parents=True, exist_ok=True)
        self._remove_dead_uploads()

    def close(self) -> None:
        self.engine.dispose()

    @property
    def display_url(self) -> str:
        return make_url(self.url).render_as_string(hide_password=True)

    # --- transactions ---------------------------------------------------------------------
    def _write(self, work: Callable[[Session], T]) -> T:
        """Run `work` in one write transaction. SQLite takes its write lock at the start
        (BEGIN IMMEDIATE), so concurrent writers, in this process or another, queue instead
        of failing; on other databases two writers inserting the same new row at once make
        the loser retry, and it then finds the row and merges into it."""
        for attempt in itertools.count(1):
            try:
                with Session(self.engine.execution_options(razzle_write=True)) as session, session.begin():
                    return work(session)
            except IntegrityError:
                if attempt == 3:
                    raise

    def _read(self) -> Session:
        return Session(self.engine)

    # --- metrics ---------------------------------------------------------------------------
    def record_metrics(
        self,
        run: str,
        iteration: int,
        metrics: Mapping[str, float],
        reliability: Sequence[tuple[float | None, float | None, int]] | None = None,
        worker: str | None = None,
    ) -> bool:
        """Store (merge) one iteration's metrics; returns True when the iteration is new."""
        problems = [p for p in (label_problem("run name", run), iteration_problem(iteration)) if p]
        problems += metrics_problems(dict(metrics))
        if reliability is not None:
            problems += reliability_problems(list(reliability))
        problems += _worker_problems(worker)
        if not metrics and reliability is None:
            problems.append("nothing to store: no metrics and no reliability diagram")
        if problems:
            raise StoreInputError(problems)
        now = time.time()

        def merge(session: Session) -> bool:
            row = session.scalars(
                select(IterationRow).where(IterationRow.run == run, IterationRow.iteration == iteration)
            ).one_or_none()
            created = row is None
            if created:
                row = IterationRow(run=run, iteration=iteration, created_at=now, updated_at=now, worker=worker)
                session.add(row)
                session.flush()
            else:
                row.updated_at = now
                row.worker = worker or row.worker
            if metrics:
                session.execute(
                    delete(MetricValue).where(MetricValue.iteration_id == row.id, MetricValue.name.in_(list(metrics)))
                )
                session.add_all(MetricValue(iteration_id=row.id, name=k, value=float(v)) for k, v in metrics.items())
            if reliability is not None:
                session.execute(delete(ReliabilityBin).where(ReliabilityBin.iteration_id == row.id))
                session.add_all(
                    ReliabilityBin(iteration_id=row.id, bin=i, mean_value=v, mean_outcome=o, count=c)
                    for i, (v, o, c) in enumerate(reliability)
                )
            _saw_worker(session, worker, now)
            return created

        return self._write(merge)

    def list_metrics(
        self,
        run: str | None = None,
        limit: int = 100,
        offset: int = 0,
        min_iteration: int | None = None,
        max_iteration: int | None = None,
        newest_first: bool = False,
    ) -> tuple[list[dict], int]:
        """Flat entries in the order they were first recorded, and the total that match."""
        query = select(IterationRow)
        if run is not None:
            query = query.where(IterationRow.run == run)
        if min_iteration is not None:
            query = query.where(IterationRow.iteration >= min_iteration)
        if max_iteration is not None:
            query = query.where(IterationRow.iteration <= max_iteration)
        with self._read() as session:
            total = session.scalar(select(func.count()).select_from(query.subquery()))
            order = IterationRow.id.desc() if newest_first else IterationRow.id
            rows = session.scalars(query.order_by(order).limit(limit).offset(offset)).all()
            return _flat_entries(session, rows), total

    def latest_metrics(self, run: str | None = None) -> dict | None:
        entries, _ = self.list_metrics(run=run, limit=1, newest_first=True)
        return entries[0] if entries else None

    def runs(self) -> list[dict]:
        """Per run: iterations, their range, games and positions summed, last update."""
        sums = {
            name: select(IterationRow.run, func.sum(MetricValue.value))
            .join(MetricValue, MetricValue.iteration_id == IterationRow.id)
            .where(MetricValue.name == name)
            .group_by(IterationRow.run)
            for name in BOOKKEEPING_SUMS
        }
        overview = select(
            IterationRow.run,
            func.count(),
            func.min(IterationRow.iteration),
            func.max(IterationRow.iteration),
            func.max(IterationRow.updated_at),
        ).group_by(IterationRow.run)
        with self._read() as session:
            totals = {name: dict(session.execute(query).all()) for name, query in sums.items()}
            models = dict(session.execute(select(ModelRow.run, func.count()).group_by(ModelRow.run)).all())
            return [
                {
                    "run": run,
                    "iterations": count,
                    "first_iteration": first,
                    "last_iteration": last,
                    "last_update": iso_time(updated),
                    **{name: int(totals[name].get(run) or 0) for name in BOOKKEEPING_SUMS},
                    "models": models.get(run, 0),
                }
                for run, count, first, last, updated in session.execute(overview.order_by(IterationRow.run)).all()
            ]

    def activity(self, now: float | None = None) -> dict:
        """Active or idle, judged from the last update against the run's usual pace: a run
        whose iterations take 20 minutes is not idle after 5."""
        now = time.time() if now is None else now
        with self._read() as session:
            last = session.scalars(select(IterationRow).order_by(IterationRow.updated_at.desc()).limit(1)).first()
            if last is None:
                return {"status": "idle", "last_update": None, "active_window_s": MIN_ACTIVE_WINDOW_S}
            times = session.scalars(
                select(IterationRow.created_at)
                .where(IterationRow.run == last.run)
                .order_by(IterationRow.created_at.desc())
                .limit(11)
            ).all()
        gaps = [later - earlier for earlier, later in itertools.pairwise(reversed(times))]
        window = max(MIN_ACTIVE_WINDOW_S, 3 * statistics.median(gaps)) if gaps else MIN_ACTIVE_WINDOW_S
        return {
            "status": "active" if now - last.updated_at <= window else "idle",
            "last_update": iso_time(last.updated_at),
            "active_window_s": round(window, 1),
        }

    def workers(self) -> list[dict]:
        with self._read() as session:
            rows = session.scalars(select(WorkerRow).order_by(WorkerRow.last_seen.desc())).all()
            return [
                {
                    "name": w.name,
                    "first_seen": iso_time(w.first_seen),
                    "last_seen": iso_time(w.last_seen),
                    "posts": w.posts,
                }
                for w in rows
            ]

    def clear(self, run: str | None = None) -> dict:
        """Delete one run's metrics and models, or everything; returns what was deleted."""
        if run is not None and label_problem("run name", run):
            raise StoreInputError([label_problem("run name", run)])

        def delete_rows(session: Session) -> tuple[list[str], dict]:
            chosen, models = select(IterationRow.id), select(ModelRow.id)
            if run is not None:
                chosen, models = chosen.where(IterationRow.run == run), models.where(ModelRow.run == run)
            runs = set(session.scalars(select(IterationRow.run).where(IterationRow.id.in_(chosen))).all())
            runs |= set(session.scalars(select(ModelRow.run).where(ModelRow.id.in_(models))).all())
            counts = {
                "metric_values": session.execute(
                    delete(MetricValue).where(MetricValue.iteration_id.in_(chosen))
                ).rowcount,
                "reliability_bins": session.execute(
                    delete(ReliabilityBin).where(ReliabilityBin.iteration_id.in_(chosen))
                ).rowcount,
            }
            counts["iterations"] = session.execute(delete(IterationRow).where(IterationRow.id.in_(chosen))).rowcount
            counts["models"] = session.execute(delete(ModelRow).where(ModelRow.id.in_(models))).rowcount
            if run is None:
                counts["workers"] = session.execute(delete(WorkerRow)).rowcount
            counts["model_files"] = self._remove_files_except(set(session.scalars(select(ModelRow.sha256)).all()))
            return sorted(runs), counts

        runs, counts = self._write(delete_rows)
        return {"runs": runs, **counts}

    # --- models ----------------------------------------------------------------------------
    def add_model(
        self, run: str, version: str, iteration: int, source: str | os.PathLike | BinaryIO, worker: str | None = None
    ) -> tuple[ModelInfo, bool]:
        """Store a model file (a path or an open binary file) under (run, version); returns
        its info and whether it is new. The bytes are copied, hashed and checked as a model
        file before anything is recorded; the same content is kept once."""
        problems = [
            p
            for p in (
                label_problem("run name", run),
                label_problem("model version", version),
                iteration_problem(iteration),
            )
            if p
        ]
        problems += _worker_problems(worker)
        if problems:
            raise StoreInputError(problems)
        with IncomingFile(self.models_dir) as incoming:
            temporary = incoming.path
            if isinstance(source, (str, os.PathLike)):
                with open(source, "rb") as reader:
                    sha256 = incoming.copy_and_hash(reader)
            else:
                sha256 = incoming.copy_and_hash(source)
            _check_model_file(temporary)
            size = temporary.stat().st_size
            now = time.time()

            def upsert(session: Session) -> tuple[ModelInfo, bool]:
                # The file gets its final name under the write lock, so `clear` (which also
                # holds it) never removes a file whose row is about to be committed.
                final = self._path_of(sha256)
                if temporary.exists():
                    os.replace(temporary, final)
                    _fsync_dir(self.models_dir)
                row = session.scalars(
                    select(ModelRow).where(ModelRow.run == run, ModelRow.version == version)
                ).one_or_none()
                created = row is None
                if created:
                    row = ModelRow(run=run, version=version)
                    session.add(row)
                row.iteration, row.sha256, row.size, row.uploaded_at = iteration, sha256, size, now
                row.worker = worker or row.worker
                _saw_worker(session, worker, now)
                session.flush()
                return ModelInfo.from_row(row), created

            return self._write(upsert)

    def list_models(self, run: str | None = None) -> list[ModelInfo]:
        query = select(ModelRow).order_by(ModelRow.uploaded_at, ModelRow.id)
        if run is not None:
            query = query.where(ModelRow.run == run)
        with self._read() as session:
            return [ModelInfo.from_row(row) for row in session.scalars(query).all()]

    def latest_model(self, run: str | None = None) -> ModelInfo | None:
        models = self.list_models(run)
        return models[-1] if models else None

    def model_file(self, version: str, run: str | None = None) -> tuple[Path, ModelInfo] | None:
        """The stored file of a version (the most recent upload of it when run is None)."""
        models = [m for m in self.list_models(run) if m.version == version]
        if not models:
            return None
        return self._path_of(models[-1].sha256), models[-1]

    def _path_of(self, sha256: str) -> Path:
        return self.models_dir / f"{sha256}.pt"

    def _remove_files_except(self, kept: set[str]) -> int:
        removed = 0
        for path in self.models_dir.glob("*.pt"):
            if path.stem not in kept:
                path.unlink(missing_ok=True)
                removed += 1
        return removed

    def _remove_dead_uploads(self) -> None:
        """Temporary files of uploads that a killed process never finished: a live upload
        holds a lock on its file, so any file whose lock is free belongs to nobody."""
        for path in self.models_dir.glob(f"{IncomingFile.PREFIX}*.tmp"):
            try:
                descriptor = os.open(path, os.O_RDONLY)
            except FileNotFoundError:
                continue  # finished meanwhile
            try:
                fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as error:
                if error.errno not in (errno.EWOULDBLOCK, errno.EAGAIN):
                    raise
            else:
                path.unlink(missing_ok=True)
            finally:
                os.close(descriptor)


class IncomingFile:
    """A model upload on its way to its final name: a temporary file in the models folder,
    locked (flock) for as long as this process works on it, removed if it is not renamed."""

    PREFIX = ".incoming-"

    def __init__(self, folder: Path):
        self.folder = folder
        self.path: Path | None = None  # chosen on entering
        self._file: BinaryIO | None = None

    def __enter__(self) -> IncomingFile:
        while self._file is None:
            self.path = self.folder / f"{self.PREFIX}{uuid.uuid4().hex}.tmp"
            file = open(self.path, "wb")
            fcntl.flock(file.fileno(), fcntl.LOCK_EX)
            # A store starting in another process may have taken the file for a dead one's
            # between open and lock; then start again under a new name.
            try:
                same = os.stat(self.path).st_ino == os.fstat(file.fileno()).st_ino
            except FileNotFoundError:
                same = False
            if same:
                self._file = file
            else:
                file.close()
        return self

    def copy_and_hash(self, reader: BinaryIO) -> str:
        """Copy `reader` into the file (flushed to disk) and return the bytes' SHA-256."""
        digest = hashlib.sha256()
        while chunk := reader.read(1 << 20):
            digest.update(chunk)
            self._file.write(chunk)
        self._file.flush()
        os.fsync(self._file.fileno())
        return digest.hexdigest()

    def __exit__(self, *_exc) -> None:
        self.path.unlink(missing_ok=True)
        self._file.close()


def _worker_problems(worker: str | None) -> list[str]:
    problem = None if worker is None else label_problem("worker name", worker)
    return [problem] if problem else []


def _saw_worker(session: Session, worker: str | None, now: float) -> None:
    if worker is None:
        return
    row = session.get(WorkerRow, worker)
    if row is None:
        session.add(WorkerRow(name=worker, first_seen=now, last_seen=now, posts=1))
    else:
        row.last_seen, row.posts = now, row.posts + 1


def _flat_entries(session: Session, rows: Sequence[IterationRow]) -> list[dict]:
    ids = [row.id for row in rows]
    values: dict[int, dict[str, float]] = {i: {} for i in ids}
    for iteration_id, name, value in session.execute(
        select(MetricValue.iteration_id, MetricValue.name, MetricValue.value)
        .where(MetricValue.iteration_id.in_(ids))
        .order_by(MetricValue.name)
    ):
        values[iteration_id][name] = value
    bins: dict[int, list[dict]] = {}
    for b in session.scalars(
        select(ReliabilityBin).where(ReliabilityBin.iteration_id.in_(ids)).order_by(ReliabilityBin.bin)
    ):
        bins.setdefault(b.iteration_id, []).append(
            {"mean_value": b.mean_value, "mean_outcome": b.mean_outcome, "count": b.count}
        )
    entries = []
    for row in rows:
        entry = {
            "run": row.run,
            "iteration": row.iteration,
            "timestamp": iso_time(row.created_at),
            "worker": row.worker,
        }
        entry.update(values[row.id])
        if row.id in bins:
            entry["reliability"] = bins[row.id]
        entries.append(entry)
    return entries


def _create_engine(url: str) -> Engine:
    if make_url(url).get_backend_name() != "sqlite":
        return create_engine(url, pool_pre_ping=True)
    engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 60})

    @event.listens_for(engine, "connect")
    def _configure(dbapi_connection, _record) -> None:
        # Hand transaction control to the "begin" hook below; WAL lets readers run beside
        # a writer, also across processes sharing the file.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA busy_timeout = 60000")
        cursor.execute("PRAGMA foreign_keys = ON")
        if make_url(url).database not in (None, "", ":memory:"):
            cursor.execute("PRAGMA journal_mode = WAL")
            cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(connection) -> None:
        immediate = connection.get_execution_options().get("razzle_write", False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine


def _check_model_file(path: Path) -> None:
    """Refuse anything the model loader refuses (it loads with weights_only: no code runs)."""
    try:
        load_model_file(path)
    except ModelFileError as error:
        reason = str(error).replace(f"{path} ", "the file ").replace(str(path), "the file")
        raise StoreInputError([f"not a razzle model file: {reason}"]) from None


def _fsync_dir(path: Path) -> None:
    """Make a rename durable (POSIX); a no-op where directories cannot be opened."""
    try:
        descriptor = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
