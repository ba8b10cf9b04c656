"""`razzle serve`: the training API, the dashboard and play against the AI, over one store."""

from __future__ import annotations

import argparse
import ipaddress
import os
import signal
import sys
from contextlib import contextmanager
from pathlib import Path

TOKEN_ENV = "RAZZLE_SERVER_TOKEN"


def add_parser(subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "serve",
        help="serve the training API, dashboard and web play",
        description="Serve the training API, the metrics dashboard (/dashboard) and play against the AI (/).",
    )
    add_arguments(parser)
    parser.set_defaults(func=serve)
    return parser


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default: loopback only)")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument(
        "--db",
        default="razzle-metrics.db",
        help="a SQLite file or any SQLAlchemy URL, e.g. postgresql://user@host/razzle (default: %(default)s)",
    )
    parser.add_argument("--models-dir", help="where model files are kept (default: beside a SQLite file)")
    parser.add_argument(
        "--token",
        default=os.environ.get(TOKEN_ENV),
        help=f"writes need 'Authorization: Bearer TOKEN' (default: ${TOKEN_ENV}; none: writes are open)",
    )
    parser.add_argument("--model", help="model file the AI plays with (default: the newest model in the store)")
    parser.add_argument("--max-model-mb", type=int, default=512, help="largest model upload accepted")
    parser.add_argument(
        "--games-from",
        nargs="*",
        default=[],
        metavar="RUN_DIR",
        help="run folders whose self-play games (RUN_DIR/replay) the play page replays "
        "(default: the SQLite file's folder, when it has replay/)",
    )
    parser.add_argument(
        "--max-ai-moves",
        type=int,
        default=2,
        help="AI searches of the play page run at once; more get 503 (default: %(default)s)",
    )
    parser.add_argument("--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"])


def serve(args: argparse.Namespace) -> int:
    import uvicorn
    from sqlalchemy.exc import SQLAlchemyError

    from razzle.server.app import create_app
    from razzle.server.schema_version import SchemaError
    from razzle.server.store import MetricsStore

    if not 0 < args.port < 65536:
        print(f"error: --port must be between 1 and 65535, got {args.port}", file=sys.stderr)
        return 2
    if args.max_ai_moves < 1:
        print(f"error: --max-ai-moves must be at least 1, got {args.max_ai_moves}", file=sys.stderr)
        return 2
    if args.model and not os.path.isfile(args.model):
        print(f"error: --model {args.model} is not a file", file=sys.stderr)
        return 2
    try:
        store = MetricsStore(args.db, args.models_dir)
    except ImportError as error:
        hint = " (PostgreSQL's driver comes with: pip install -e \".[postgres]\")" if "psycopg" in str(error) else ""
        print(f"error: cannot open the database {args.db!r}: {error}{hint}", file=sys.stderr)
        return 2
    except (SQLAlchemyError, SchemaError, OSError) as error:
        print(f"error: cannot open the database {args.db!r}: {error}", file=sys.stderr)
        return 2
    if not args.token and not _is_loopback(args.host):
        print(f"warning: listening on {args.host} without --token: anyone who reaches it can write", file=sys.stderr)
    app = create_app(
        store,
        token=args.token,
        model_path=args.model,
        max_model_bytes=args.max_model_mb << 20,
        replay_folders=_replay_folders(args.games_from, args.db),
        max_ai_moves=args.max_ai_moves,
    )
    base = f"http://{args.host}:{args.port}"
    print(f"razzle server on {base}/  (dashboard {base}/dashboard, API docs {base}/docs)")
    print(f"database {store.display_url}, model files in {store.models_dir}")
    server = uvicorn.Server(uvicorn.Config(app, host=args.host, port=args.port, log_level=args.log_level))
    with _signals_end_quietly():
        server.run()
    print("server stopped")
    return 0 if server.started else 1


def _replay_folders(run_dirs: list[str], db: str) -> dict[str, Path]:
    """Run name (the folder's name, as a run names itself by default) -> its replay folder."""
    from sqlalchemy.engine import make_url

    from razzle.server.replays import run_name_of
    from razzle.server.store import database_url

    url = make_url(database_url(db))
    if not run_dirs and url.get_backend_name() == "sqlite" and url.database:
        beside = Path(url.database).parent
        if (beside / "replay").is_dir():
            run_dirs = [str(beside)]
    return {run_name_of(Path(d)): Path(d) / "replay" for d in run_dirs}


@contextmanager
def _signals_end_quietly():
    """uvicorn shuts down gracefully on SIGINT/SIGTERM and then re-raises the signal to the
    handler that was there before it; with this one there, a requested stop exits with 0."""
    previous = {sig: signal.signal(sig, lambda *_: None) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def main(argv: list[str] | None = None) -> int:
    """`python -m razzle.server`: the same as `razzle serve`."""
    parser = argparse.ArgumentParser(prog="python -m razzle.server", description=add_parser.__doc__)
    add_arguments(parser)
    return serve(parser.parse_args(argv))
