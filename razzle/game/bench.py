"""`razzle bench engine`: legal-action generation and random-game throughput.

The reference is a plain single-game Python engine of this game on a 2-core machine:
about 100,000 legal-action lists/s and 550 complete random games/s.
"""

from __future__ import annotations

import time

import torch

from razzle.cli.arguments import positive_float, positive_int, torch_device
from razzle.game.engine import derive_legal, initial_state, random_actions, step
from razzle.game.state import State

REFERENCE_LEGAL_PER_S = 100_000
REFERENCE_GAMES_PER_S = 550


def add_arguments(parser) -> None:
    parser.add_argument("--batch-sizes", type=positive_int, nargs="+", default=[1, 64, 1024])
    parser.add_argument("--seconds", type=positive_float, default=2.0, help="measuring time per round")
    parser.add_argument(
        "--rounds", type=positive_int, default=3, help="rounds per figure; the best is reported (as timeit does)"
    )
    parser.add_argument(
        "--device", type=torch_device, action="append", help="cpu, cuda (default: cpu, and cuda when present)"
    )


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _timed(fn, seconds: float, device: torch.device) -> tuple[int, float]:
    """Call fn until `seconds` pass; returns (calls, elapsed) after one warm-up call."""
    fn()
    _sync(device)
    calls, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        fn()
        calls += 1
    _sync(device)
    return calls, time.perf_counter() - started


def midgame_positions(batch_size: int, device: torch.device, seed: int = 0) -> State:
    """Positions from random games, 0-60 actions in, so generation sees real boards."""
    generator = torch.Generator(device=device).manual_seed(seed)
    state = initial_state(batch_size, device=device)
    depth = torch.randint(0, 60, (batch_size,), generator=generator, device=device)
    for ply in range(60):
        stepped = step(state, random_actions(state, generator))
        state = state.where((depth > ply) & ~stepped.done, stepped)
    return state


def legal_per_s(batch_size: int, device: torch.device, seconds: float) -> float:
    state = midgame_positions(batch_size, device)
    calls, elapsed = _timed(lambda: derive_legal(state), seconds, device)
    return calls * batch_size / elapsed


def random_games_per_s(batch_size: int, device: torch.device, seconds: float) -> tuple[float, float]:
    """Complete random games/s with finished games replaced at once; also actions/s."""
    generator = torch.Generator(device=device).manual_seed(1)
    fresh = initial_state(batch_size, device=device)
    state = fresh.clone()
    finished = torch.zeros((), dtype=torch.int64, device=device)
    actions = 0

    def advance():
        nonlocal state, finished, actions
        state = step(state, random_actions(state, generator), in_place=True)
        finished += state.done.sum()
        state.assign_where_(state.done, fresh)
        actions += batch_size

    advance()
    finished.zero_()
    actions = 0
    _sync(device)
    started = time.perf_counter()
    while time.perf_counter() - started < seconds:
        advance()
    _sync(device)
    elapsed = time.perf_counter() - started
    return int(finished) / elapsed, actions / elapsed


def run(args) -> dict:
    devices = args.device or ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    figures: dict = {"threads": torch.get_num_threads()}
    for name in devices:
        device = torch.device(name)
        for batch in args.batch_sizes:
            legal = max(legal_per_s(batch, device, args.seconds) for _ in range(args.rounds))
            games, actions = max(random_games_per_s(batch, device, args.seconds) for _ in range(args.rounds))
            key = f"{device.type}_b{batch}"
            figures[key] = {
                "legal_per_s": round(legal),
                "random_games_per_s": round(games, 1),
                "random_actions_per_s": round(actions),
                "legal_vs_reference": round(legal / REFERENCE_LEGAL_PER_S, 2),
                "games_vs_reference": round(games / REFERENCE_GAMES_PER_S, 2),
            }
            print(
                f"{device.type:>4} batch {batch:>5}: {legal:>12,.0f} legal lists/s "
                f"({legal / REFERENCE_LEGAL_PER_S:5.1f}x ref)  {games:>9,.1f} random games/s "
                f"({games / REFERENCE_GAMES_PER_S:5.1f}x ref)  {actions:>11,.0f} actions/s"
            )
    return figures
