"""Schema-driven fuzzing: schemathesis generates requests for every operation of the real
server's /openapi.json (schema-valid ones and schema-violating ones), with and without the
server's token, on SQLite and PostgreSQL. Every response must be documented and match its
schema, no 5xx, schema-valid requests accepted (or refused as the schema says), invalid ones
refused, and a refused write must leave the store exactly as it was.

Seeded (hypothesis `derandomize`) and bounded: POSITIVE_EXAMPLES + NEGATIVE_EXAMPLES per
operation, generation only (no shrinking), so a run takes seconds per operation.
"""

from __future__ import annotations

import functools

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis import GenerationMode
from schemathesis.config import SchemathesisConfig
from schemathesis.checks import positive_data_acceptance

from razzle.server.app import create_app
from razzle.server.store import MetricsStore
from tests.server.conftest import BOTH_DATABASES, ServerProcess

pytestmark = BOTH_DATABASES
TOKEN = "fuzz-token"
POSITIVE_EXAMPLES = 15
NEGATIVE_EXAMPLES = 10
WRITES = {("POST", "/training/metrics"), ("POST", "/training/models"), ("DELETE", "/training/clear")}
SCHEMA_CANNOT_SAY = {("POST", "/training/models"), ("POST", "/training/progress")}


def _operations() -> list[tuple[str, str]]:
    """Every operation the schema documents (from the app itself, so none is forgotten)."""
    store = MetricsStore("sqlite://")
    paths = create_app(store).openapi()["paths"]
    store.close()
    return [(method.upper(), path) for path, methods in paths.items() for method in methods]


@pytest.fixture(scope="module")
def fuzzed_server(backend, database_maker, tmp_path_factory):
    server = ServerProcess(database_maker.new(backend, tmp_path_factory.mktemp("fuzz")), TOKEN).start()
    yield server
    server.stop()


def store_snapshot(server: ServerProcess) -> tuple:
    """What a write could change: every run, model, worker and the newest update."""
    with server.client() as client:
        dashboard = client.get("/training/dashboard").json()
        models = client.get("/training/models").json()
    # Progress reports live in the server's memory, not in the store, and age by the second.
    del dashboard["status"], dashboard["active_window_s"], dashboard["progress"]
    return dashboard, models


@pytest.mark.slow
@pytest.mark.parametrize("with_token", [True, False], ids=["token", "no-token"])
@pytest.mark.parametrize("method, path", _operations())
def test_every_operation_holds_under_generated_requests(fuzzed_server, with_token, method, path):
    auth = {"auth": {"openapi": {"HTTPBearer": {"bearer": TOKEN}}}}
    config = SchemathesisConfig.from_dict(auth if with_token else {})
    operation = schemathesis.openapi.from_url(f"{fuzzed_server.url}/openapi.json", config=config)[path][method]
    # A schema cannot say "a file that loads as a razzle model": generated files are refused
    # with a documented 422, which the positive-acceptance check would count against us.
    # Nor "done at most total" of a progress report: those are refused with a documented 422.
    excluded = [positive_data_acceptance] if (method, path) in SCHEMA_CANNOT_SAY else []
    generated = {mode: 0 for mode in GenerationMode}
    at_start = store_snapshot(fuzzed_server)

    def exercise(case, mode: GenerationMode) -> None:
        generated[mode] += 1
        before = store_snapshot(fuzzed_server) if (method, path) in WRITES else None
        response = case.call(base_url=fuzzed_server.url, timeout=60)
        case.validate_response(response, excluded_checks=excluded)
        if before is not None and response.status_code >= 400:
            assert store_snapshot(fuzzed_server) == before, f"refused {case.as_curl_command()} changed the store"
        if not with_token and (method, path) in WRITES:
            assert response.status_code >= 400, f"accepted without the token: {case.as_curl_command()}"

    for mode, examples in ((GenerationMode.POSITIVE, POSITIVE_EXAMPLES), (GenerationMode.NEGATIVE, NEGATIVE_EXAMPLES)):
        if mode is GenerationMode.POSITIVE or has_inputs(operation):
            run_examples(operation.as_strategy(generation_mode=mode), examples, functools.partial(exercise, mode=mode))
    assert generated[GenerationMode.POSITIVE] >= 1
    print(f"\nFUZZ {method} {path} token={with_token}: {sum(generated.values())} requests")
    if not with_token:
        assert store_snapshot(fuzzed_server) == at_start, "a request without the token changed the store"


def has_inputs(operation) -> bool:
    """Operations without any parameter or body have no schema to violate."""
    definition = operation.definition.raw
    return bool(definition.get("parameters") or definition.get("requestBody"))


def run_examples(strategy, examples: int, check) -> None:
    @settings(
        max_examples=examples,
        derandomize=True,
        database=None,
        deadline=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=strategy)
    def run(case) -> None:
        check(case)

    run()
