"""The game API under abuse, against a real server process: thousands of new games, the
largest simulation count, more concurrent AI moves than the server runs. Memory and the
number of searches stay bounded, and the training API keeps answering meanwhile. Figures
are printed (run with `-s`) for the README's Reliability section; nothing asserts a time."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from razzle.server.games import MAX_GAMES
from razzle.server.schemas import MAX_SIMULATIONS

pytestmark = pytest.mark.slow
NEW_GAMES = 3000
CONCURRENT_AI_MOVES = 6


def resident_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def test_thousands_of_games_stay_within_the_table(start_server):
    server = start_server()
    with server.client() as client:
        first = client.post("/game/new", json={"simulations": MAX_SIMULATIONS}).json()["id"]
    before = resident_mb(server.process.pid)

    def new_games(count: int) -> list[int]:
        with server.client() as client:
            return [client.post("/game/new", json={"human_side": 1}).status_code for _ in range(count)]

    started = time.perf_counter()
    with ThreadPoolExecutor(8) as pool:
        statuses = [s for batch in pool.map(new_games, [NEW_GAMES // 8] * 8) for s in batch]
    seconds = time.perf_counter() - started
    after = resident_mb(server.process.pid)
    assert statuses == [200] * len(statuses)
    with server.client() as client:
        forgotten = client.get(f"/game/{first}")
        assert forgotten.status_code == 404 and "start a new game" in forgotten.json()["detail"]
    print(
        f"\nGAMES: {len(statuses)} new games from 8 clients in {seconds:.1f} s ({len(statuses) / seconds:.0f}/s); "
        f"the server keeps the newest {MAX_GAMES}; resident memory {before:.0f} -> {after:.0f} MB"
    )


def test_concurrent_ai_moves_beyond_the_limit_are_refused_at_once(start_server):
    server = start_server()  # the default limit: 2 AI searches at once
    with server.client() as client:
        games = [
            client.post("/game/new", json={"human_side": 1, "simulations": MAX_SIMULATIONS}).json()["id"]
            for _ in range(CONCURRENT_AI_MOVES)
        ]
    outcomes: list[tuple[int, float]] = []
    barrier = threading.Barrier(CONCURRENT_AI_MOVES)

    def ai_move(game_id: str) -> None:
        with server.client() as client:
            barrier.wait()
            started = time.perf_counter()
            response = client.post(f"/game/{game_id}/ai")
            outcomes.append((response.status_code, time.perf_counter() - started))
            if response.status_code == 503:
                assert response.headers["retry-after"] == "2"

    threads = [threading.Thread(target=ai_move, args=(game,)) for game in games]
    for thread in threads:
        thread.start()
    time.sleep(1.0)  # the searches are running now; the training API still answers
    with server.client() as client:
        assert client.get("/health").status_code == 200
        posted = client.post("/training/metrics", json={"run": "beside-ai", "iteration": 0, "metrics": {"lr": 0.1}})
        assert posted.status_code == 200
    for thread in threads:
        thread.join(600)
    played = [seconds for status, seconds in outcomes if status == 200]
    busy = [seconds for status, seconds in outcomes if status == 503]
    assert len(played) + len(busy) == CONCURRENT_AI_MOVES
    assert 1 <= len(played) <= 2 and len(busy) >= CONCURRENT_AI_MOVES - 2
    print(
        f"\nAI: {CONCURRENT_AI_MOVES} concurrent AI moves of {MAX_SIMULATIONS} simulations (no model: uniform "
        f"prior): {len(played)} played in {max(played):.1f} s, {len(busy)} refused with 503 in "
        f"{max(busy):.2f} s; resident memory {resident_mb(server.process.pid):.0f} MB"
    )
