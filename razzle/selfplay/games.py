"""Self-play: B games in lockstep with batched MCTS, finished games replaced at once.

Every searched position becomes a training sample (`razzle.model.samples`, with the
search's root value beside the game's outcome); every game becomes a `GameRecord`; the
statistics use the canonical metric names. Outputs played apart (by the processes of a
DDP run) combine with `merge_outputs` into the output of one batch of games.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

import torch
from tqdm import tqdm

from razzle.game.actions import END, KNIGHT_PLANES, NUM_ACTIONS, NUM_SQUARES
from razzle.game.board import square_name, tables
from razzle.game.engine import initial_state, step
from razzle.game.notation import GameRecord
from razzle.game.rules import Rules
from razzle.game.state import State
from razzle.model.samples import Samples, build_samples
from razzle.search import MCTS, SearchConfig, TimedEvaluator, choose_actions
from razzle.search.evaluator import Evaluator
from razzle.search.streams import draw_seeds

OPENING_TURNS = 5


@dataclass(frozen=True)
class SelfPlayConfig:
    """games: games per call (per iteration); parallel: games searched in lockstep;
    temperature for the first `temperature_turns` turns of a game, then
    `final_temperature` (sampling from visits^(1/T); 0 plays the most visited)."""

    games: int = 50
    parallel: int = 32
    temperature: float = 1.0
    temperature_turns: int = 15
    final_temperature: float = 0.3

    def __post_init__(self) -> None:
        for name in ("games", "parallel"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"selfplay.{name} must be a positive integer, got {value!r}")
        if not isinstance(self.temperature_turns, int) or self.temperature_turns < 0:
            raise ValueError(f"selfplay.temperature_turns must be an integer >= 0, got {self.temperature_turns!r}")
        for name in ("temperature", "final_temperature"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or isinstance(value, bool) or value < 0:
                raise ValueError(f"selfplay.{name} must be a number >= 0, got {value!r}")


@dataclass(frozen=True)
class GameSummary:
    """What the statistics need of a finished game: its result (+1 / -1 / 0 from Player 1's
    view), its length in turns, how many turns were pass chains, and its opening."""

    result: int
    length: int
    turns_with_pass: int
    opening: tuple[str, ...]


@dataclass
class SelfPlayOutput:
    """samples, records and summaries of the games; `evaluations` network positions
    evaluated in `seconds` of wall time; `stats` from all of them (`output_statistics`)."""

    samples: Samples
    records: list[GameRecord]
    summaries: list[GameSummary]
    evaluations: int
    seconds: float
    stats: dict[str, float] = field(default_factory=dict)


SQUARE_NAMES = [square_name(square) for square in range(NUM_SQUARES)]


def move_codes(state: State, actions: torch.Tensor) -> torch.Tensor:
    """[B] one integer per chosen action that names it in notation without the position:
    action id * NUM_SQUARES + target square (a knight's landing square, a pass's
    receiver; 0 for END). Vectorised, so the loop does no Python per game per move."""
    plane, origin = actions // NUM_SQUARES, actions % NUM_SQUARES
    knight = tables(actions.device).knight_to.view(-1)
    landing = knight.take(origin * KNIGHT_PLANES + plane.clamp(max=KNIGHT_PLANES - 1))
    receiver = state.receiver.gather(1, (plane - KNIGHT_PLANES).clamp(0, 7).unsqueeze(1))
    side = state.to_move.view(-1, 1, 1).expand(-1, 1, state.squares.shape[2])
    caught = state.squares.gather(1, side).squeeze(1).gather(1, receiver).squeeze(1)
    target = torch.where(plane < KNIGHT_PLANES, landing, torch.where(actions == END, 0, caught))
    return actions * NUM_SQUARES + target


def game_from_codes(codes: list[int]) -> tuple[list[str], int, tuple[str, ...]]:
    """A finished game's action texts, its turns that began with a pass, and its opening
    (the first OPENING_TURNS actions that began a turn), from its `move_codes`.

    A position is mid-chain exactly when the action before it was a pass."""
    texts, turns_with_pass, opening, mid_chain = [], 0, [], False
    for code in codes:
        action, target = divmod(code, NUM_SQUARES)
        text = "end" if action == END else f"{SQUARE_NAMES[action % NUM_SQUARES]}-{SQUARE_NAMES[target]}"
        is_pass = action != END and action // NUM_SQUARES >= KNIGHT_PLANES
        if not mid_chain:
            turns_with_pass += is_pass
            if len(opening) < OPENING_TURNS:
                opening.append(text)
        texts.append(text)
        mid_chain = is_pass
    return texts, turns_with_pass, tuple(opening)


def _to_actions(result, values: torch.Tensor) -> torch.Tensor:
    """Slot-indexed values [n, 49] -> [n, 897] over absolute action ids (legal slots only)."""
    values = torch.where(result.legal, values, 0.0)
    return torch.zeros(values.shape[0], NUM_ACTIONS, device=values.device).scatter_(1, result.actions, values)


class _MoveLog:
    """The move codes of the game in each slot, on the games' device: one column per move,
    written for all searched games at once; read once per finished game."""

    def __init__(self, width: int, device: torch.device, capacity: int = 256):
        self.codes = torch.zeros(width, capacity, dtype=torch.long, device=device)
        self.count = torch.zeros(width, dtype=torch.long, device=device)
        self.longest = 0  # an upper bound of count, known without reading the device

    def record(self, slots: torch.Tensor, codes: torch.Tensor) -> None:
        if self.longest == self.codes.shape[1]:
            self.codes = torch.cat([self.codes, torch.zeros_like(self.codes)], 1)
        self.codes[slots, self.count[slots]] = codes
        self.count[slots] += 1
        self.longest += 1

    def game(self, slot: int) -> list[int]:
        return self.codes[slot, : int(self.count[slot])].tolist()

    def clear(self, slots: list[int]) -> None:
        self.count[slots] = 0
        self.longest = int(self.count.max())


def play_games(
    evaluator: Evaluator,
    search: SearchConfig,
    config: SelfPlayConfig,
    rules: Rules | None = None,
    device: torch.device | str = "cpu",
    seed: int = 0,
    progress: bool = True,
    headers: dict[str, str] | None = None,
    on_game: Callable[[int], None] | None = None,
) -> SelfPlayOutput:
    """Play `config.games` games of the evaluator against itself, with root noise;
    `on_game(finished)` is called as each game finishes."""
    rules = rules or Rules()
    timed = TimedEvaluator(evaluator)
    mcts = MCTS(timed, search)
    generator = torch.Generator().manual_seed(seed)
    width = min(config.parallel, config.games)
    fresh = initial_state(width, rules, device)
    state = fresh.clone()
    slot_game = torch.arange(width)
    results = torch.zeros(config.games, dtype=torch.long)
    lengths = torch.zeros(config.games, dtype=torch.long)
    moves = _MoveLog(width, state.device)
    played: list[tuple[list[str], int, tuple[str, ...]]] = [([], 0, ())] * config.games
    started, finished = width, 0
    chunks: list[tuple[Samples, torch.Tensor, torch.Tensor]] = []
    clock = time.perf_counter()
    bar = tqdm(total=config.games, desc="self-play", unit="game", disable=not progress, leave=False)

    while finished < config.games:
        live = (~state.done).nonzero().flatten()
        positions = state.index(live)
        result = mcts.search(positions, draw_seeds(len(live), generator, state.device), root_noise=True)
        early = positions.turn < config.temperature_turns
        chosen = torch.where(
            early,
            choose_actions(result, config.temperature, generator),
            choose_actions(result, config.final_temperature, generator),
        )
        prior_logits = _to_actions(result, result.prior).clamp(min=1e-12).log()
        samples = build_samples(
            positions, _to_actions(result, result.policy), prior_logits, torch.zeros(len(live)), result.root_value
        )
        ids = slot_game.index_select(0, live.cpu())
        sign = torch.where(positions.to_move == 0, 1.0, -1.0).cpu()
        chunks.append((samples, ids, sign))
        moves.record(live, move_codes(positions, chosen))

        actions = torch.full((width,), END, dtype=torch.long, device=state.device)
        actions[live] = chosen.to(state.device)
        state = step(state, actions, in_place=True)

        ended = live[state.done.index_select(0, live)].tolist()
        for slot in ended:
            game_id = int(slot_game[slot])
            results[game_id] = int(state.result[slot])
            lengths[game_id] = int(state.turn[slot])
            played[game_id] = game_from_codes(moves.game(slot))
            finished += 1
            bar.update(1)
            if on_game is not None:
                on_game(finished)
        restart = ended[: config.games - started]
        if restart:
            mask = torch.zeros(width, dtype=torch.bool, device=state.device)
            mask[restart] = True
            state.assign_where_(mask, fresh)
            moves.clear(restart)
            for slot in restart:
                slot_game[slot] = started
                started += 1
    bar.close()
    elapsed = time.perf_counter() - clock

    samples = Samples.cat([chunk for chunk, _, _ in chunks])
    game_of_sample = torch.cat([ids for _, ids, _ in chunks])
    samples.value = results[game_of_sample].float() * torch.cat([sign for _, _, sign in chunks])

    records = [
        GameRecord(texts, rules, headers={**(headers or {}), "Game": str(number + 1)})
        for number, (texts, _, _) in enumerate(played)
    ]
    summaries = [
        GameSummary(int(result), int(length), passes, opening)
        for (_, passes, opening), result, length in zip(played, results.tolist(), lengths.tolist())
    ]
    output = SelfPlayOutput(samples, records, summaries, timed.positions, elapsed)
    output.stats = output_statistics(output)
    return output


def merge_outputs(outputs: Sequence[SelfPlayOutput]) -> SelfPlayOutput:
    """One output from outputs played at the same time (e.g. one per process): games
    renumbered in order, throughput over the longest wall time."""
    records = [record for output in outputs for record in output.records]
    records = [replace(record, headers={**record.headers, "Game": str(n + 1)}) for n, record in enumerate(records)]
    merged = SelfPlayOutput(
        samples=Samples.cat([output.samples for output in outputs]),
        records=records,
        summaries=[summary for output in outputs for summary in output.summaries],
        evaluations=sum(output.evaluations for output in outputs),
        seconds=max(output.seconds for output in outputs),
    )
    merged.stats = output_statistics(merged)
    return merged


def output_statistics(output: SelfPlayOutput) -> dict[str, float]:
    """The canonical game statistics and the throughput of a batch of finished games."""
    games = output.summaries
    turns = torch.tensor([game.length for game in games], dtype=torch.float64)
    results = torch.tensor([game.result for game in games])
    total_turns = max(int(turns.sum()), 1)
    seconds = max(output.seconds, 1e-9)
    return {
        "game_length_mean": float(turns.mean()),
        "game_length_std": float(turns.std()) if len(games) > 1 else 0.0,
        "pass_decision_rate": sum(game.turns_with_pass for game in games) / total_turns,
        "p1_win_rate": float((results == 1).float().mean()),
        "draw_rate": float((results == 0).float().mean()),
        "opening_diversity": len({game.opening for game in games}) / len(games),
        "selfplay_games_per_s": len(games) / seconds,
        "selfplay_positions_per_s": len(output.samples) / seconds,
        "selfplay_evals_per_s": output.evaluations / seconds,
        "selfplay_positions": float(len(output.samples)),
        "selfplay_seconds": output.seconds,
    }
