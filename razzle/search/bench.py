"""`razzle bench search`: raw speed of the batched search with a uniform evaluator.

Figures are simulations per second over all games of a batch. The reference is a
single-game Python MCTS of this game on a 2-core machine: about 2,300-4,000
simulations/s, 8,000-17,000 when it batches 16 leaves; the target is 100,000.
`search_throughput` also serves the self-play benchmark: with a network evaluator it
splits a search's time into the evaluator's share and the search's own.
"""

from __future__ import annotations

import time

import torch
from torch._dynamo.utils import counters

from razzle.cli.arguments import positive_float, positive_int, torch_device
from razzle.game.bench import midgame_positions
from razzle.game.state import State
from razzle.search.config import SearchConfig
from razzle.search.evaluator import Evaluator, TimedEvaluator, UniformEvaluator
from razzle.search.mcts import MCTS
from razzle.search.streams import draw_seeds

REFERENCE_SIMS_PER_S = (2_300, 4_000)
REFERENCE_BATCHED_16_SIMS_PER_S = (8_000, 17_000)
TARGET_SIMS_PER_S = 100_000
# With search.compile, warm-up searches go on until one compiles nothing new, at most this
# many: a piece meets new sizes (games still descending, levels reached) after the first
# search and is compiled again, tens of seconds on a CPU that would land in the figure.
MOST_WARM_UP_SEARCHES = 5
# A search that compiled nothing new does not prove the next will not: sizes met rarely
# (at batch 4, how many games a walk still carries) compiled inside the measuring window
# and halved the figure. A window that compiled anything is measured again, at most this
# many times in all; `windows_discarded` says how many were, `compiled_while_measuring`
# whether the last one compiled too (its figure then counts a compilation).
MOST_MEASURING_WINDOWS = 4


def add_arguments(parser) -> None:
    parser.add_argument("--batch-sizes", type=positive_int, nargs="+", default=[16, 64, 256, 1024])
    parser.add_argument("--simulations", type=positive_int, default=64, help="simulations per search")
    parser.add_argument("--seconds", type=positive_float, default=3.0, help="measuring time per figure")
    parser.add_argument(
        "--threads", type=positive_int, nargs="+", default=[1, 2], help="torch intra-op thread counts to try"
    )
    parser.add_argument("--device", type=torch_device, default="cpu")
    parser.add_argument(
        "--compile", action="store_true", help="fixed-shape simulations under torch.compile (search.compile)"
    )
    parser.add_argument(
        "--cuda-graphs", action="store_true", help="simulations replayed as CUDA graphs (search.cuda_graphs)"
    )


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def fresh_compilation(config: SearchConfig) -> None:
    """With `search.compile`, start a figure from empty dynamo caches, so that it runs on
    the pieces compiled for its own batch size, as a self-play session's fixed batch does:
    after an earlier figure's other size they would run recompiled for any size, which at
    batch 1024 was 20-25% slower. Inductor's on-disk cache makes the recompilation quicker."""
    if config.compile:
        torch._dynamo.reset()


def search_throughput(
    evaluator: Evaluator,
    positions: State,
    config: SearchConfig,
    seconds: float = 3.0,
    root_noise: bool = True,
    warm_up: bool = True,
) -> dict:
    """Search `positions` repeatedly (after warm-up searches, if asked, and always when the
    simulations are captured as CUDA graphs) for about `seconds`.

    Returns simulations/s (wall clock, and per CPU-second of this process, which other
    work on a shared machine distorts less); `evaluations_per_s`, the positions whose
    evaluation the search used per second of the whole search (divide it by the bare
    network's positions/s at the same batch for the search overhead);
    `evaluator_positions_per_s`, positions per second of time spent inside the
    evaluator; and the evaluator's share of the time (None for simulations replayed as
    CUDA graphs, whose network calls are inside the graphs)."""
    timed = TimedEvaluator(evaluator)
    captured = config.cuda_graphs and positions.device.type == "cuda"
    mcts = MCTS(evaluator if captured else timed, config)
    generator = torch.Generator().manual_seed(0)
    B, device = positions.batch_size, positions.device

    def search_once() -> int:
        """One search; returns the evaluations it used."""
        run = mcts.start(positions, draw_seeds(B, generator, device), root_noise)
        for _ in range(config.simulations):
            run.simulate()
        run.result()
        mcts.recycle(run)
        return run.evaluations

    if warm_up or captured:  # a new MCTS captures its simulations in its first search
        for _ in range(MOST_WARM_UP_SEARCHES if config.compile else 1):
            graphs = counters["stats"]["unique_graphs"]
            search_once()
            if counters["stats"]["unique_graphs"] == graphs:
                break
    for window in range(MOST_MEASURING_WINDOWS if config.compile else 1):
        graphs = counters["stats"]["unique_graphs"]
        searches, used, elapsed, cpu_seconds = _measuring_window(search_once, timed, device, seconds)
        compiled = counters["stats"]["unique_graphs"] != graphs
        if not compiled:
            break
    simulations = searches * int((~positions.done).sum()) * config.simulations
    return {
        "batch": B,
        "searches": searches,
        "windows_discarded": window,
        "compiled_while_measuring": compiled,
        "sims_per_s": round(simulations / elapsed),
        "sims_per_cpu_s": round(simulations / cpu_seconds),
        "evaluations_per_s": round(used / elapsed),
        "evaluator_positions_per_s": None if captured else round(timed.positions / max(timed.seconds, 1e-9)),
        "evaluator_share": None if captured else round(timed.seconds / elapsed, 3),
        "evaluator_batch_mean": None if captured else round(timed.positions / max(timed.calls, 1), 1),
    }


def warn_if_compiled(measured: dict, figure: str) -> None:
    if measured["compiled_while_measuring"]:
        print(f"warning: {figure}: every measuring window compiled something; the figure counts a compilation")


def _measuring_window(search_once, timed: TimedEvaluator, device: torch.device, seconds: float) -> tuple:
    """Searches for about `seconds`: (searches, evaluations used, wall seconds, CPU seconds)."""
    _sync(device)
    timed.positions = timed.calls = 0
    timed.seconds = 0.0
    searches, used = 0, 0
    started, cpu_started = time.perf_counter(), time.process_time()
    while searches == 0 or time.perf_counter() - started < seconds:
        used += search_once()
        searches += 1
    _sync(device)
    return searches, used, time.perf_counter() - started, time.process_time() - cpu_started


def run(args) -> dict:
    device = torch.device(args.device)
    config = SearchConfig(simulations=args.simulations, compile=args.compile, cuda_graphs=args.cuda_graphs)
    thread_counts = args.threads
    previous_threads = torch.get_num_threads()
    figures: dict = {"simulations": args.simulations, "target_sims_per_s": TARGET_SIMS_PER_S}
    try:
        for threads in thread_counts:
            torch.set_num_threads(threads)
            for batch in args.batch_sizes:
                fresh_compilation(config)
                positions = midgame_positions(batch, device)
                measured = search_throughput(UniformEvaluator(), positions, config, args.seconds, root_noise=True)
                name = f"{device.type}_t{threads}_b{batch}"
                figures[name] = measured["sims_per_s"]
                figures[name + "_per_cpu_s"] = measured["sims_per_cpu_s"]
                print(
                    f"{device.type} threads {threads} batch {batch:>5}: {measured['sims_per_s']:>10,} simulations/s "
                    f"({measured['sims_per_s'] / TARGET_SIMS_PER_S:4.2f}x target, "
                    f"{measured['sims_per_s'] / REFERENCE_SIMS_PER_S[1]:5.1f}x the single-game reference); "
                    f"{measured['sims_per_cpu_s']:>10,} per CPU-second"
                )
                warn_if_compiled(measured, name)
    finally:
        torch.set_num_threads(previous_threads)
    figures["best_sims_per_s"] = max(
        v for k, v in figures.items() if k.startswith(device.type + "_") and not k.endswith("_per_cpu_s")
    )
    return figures
