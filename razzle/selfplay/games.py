"""Self-play: games in lockstep with batched MCTS, each finished game replaced at once.

`SelfPlaySession` keeps `parallel` games in flight across calls: a call returns once
`games` games have finished, and the unfinished ones carry over into the next call,
continuing with whatever network that call brings, so the search batch stays full to the
end instead of draining. Every game draws its randomness (search seeds, root noise, move
choice) from its own seed stream, numbered by the game, so a game is reproducible from
its number and the networks that searched it, whatever slot or batch it ran in.
`play_games` is one self-contained batch of games on top of a session.

Every searched position becomes a training sample (`razzle.model.samples`, with the
search's root value beside the game's outcome) tagged with the model that searched it;
every finished game becomes a `GameRecord`, each action annotated with the search's root
value and top moves before it (`razzle.selfplay.records`); the statistics count finished
games only and use the canonical metric names. Outputs played apart (by the processes of a DDP run)
combine with `merge_outputs` into the output of one batch of games.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

import torch
from tqdm import tqdm

from razzle.game.actions import END, NUM_ACTIONS
from razzle.game.engine import initial_state, step
from razzle.game.notation import Annotation, GameRecord
from razzle.game.rules import Rules
from razzle.game.state import NUM_SLOTS
from razzle.model.samples import Samples, build_samples
from razzle.search import MCTS, SearchConfig, choose_actions
from razzle.search.evaluator import Evaluator
from razzle.search.streams import game_seeds, move_seeds, uniforms
from razzle.selfplay.records import OPENING_TURNS, MoveLog, game_from_codes

__all__ = ["OPENING_TURNS", "SelfPlayConfig", "SelfPlayOutput", "SelfPlaySession", "play_games"]


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
    """samples (game by game, each in move order), records and summaries of the finished
    games; `evaluations` positions whose network evaluation the searches used, in `seconds`
    of wall time (games still in flight included); `stats` from the finished games
    (`output_statistics`)."""

    samples: Samples
    records: list[GameRecord]
    summaries: list[GameSummary]
    evaluations: int
    seconds: float
    stats: dict[str, float] = field(default_factory=dict)
    searched_by: torch.Tensor | None = None  # [N] int64: the model that searched each sample



@dataclass
class _Finished:
    number: int
    texts: list[str]
    turns_with_pass: int
    opening: tuple[str, ...]
    result: int
    length: int
    annotations: list[Annotation]


@dataclass
class _Searched:
    """Samples of searched positions, with their game numbers, the sign that turns a
    result from Player 1's view into the side to move's, and the model that searched."""

    samples: Samples
    game: torch.Tensor
    sign: torch.Tensor
    model: torch.Tensor

    @staticmethod
    def cat(parts: list[_Searched]) -> _Searched:
        return _Searched(
            Samples.cat([p.samples for p in parts]),
            *(torch.cat([getattr(p, name) for p in parts]) for name in ("game", "sign", "model")),
        )

    def select(self, index: torch.Tensor) -> _Searched:
        return _Searched(self.samples[index], self.game[index], self.sign[index], self.model[index])


class SelfPlaySession:
    """Self-play games in flight across calls of `play`.

    seed: the session's seed stream (game n plays with `game_seeds(seed, n)`);
    game_limit: start no game numbered at or above it (None: no end, the batch stays full);
    next_game, restart: where a session saved by `checkpoint()` continues: the next new
    game's number, and the games that were in flight, started again from their first move
    (a killed run loses their moves, never the games)."""

    def __init__(
        self,
        search: SearchConfig,
        config: SelfPlayConfig,
        rules: Rules | None = None,
        device: torch.device | str = "cpu",
        seed: int = 0,
        game_limit: int | None = None,
        next_game: int = 0,
        restart: Sequence[int] = (),
    ):
        self.search, self.config = search, config
        self.rules = rules or Rules()
        self.seed = seed
        self.game_limit = game_limit
        self._next_game = next_game
        self._restart = sorted(restart)
        width = config.parallel if game_limit is None else max(1, min(config.parallel, game_limit - next_game))
        self._fresh = initial_state(width, self.rules, device)
        self._state = self._fresh.clone()
        self._state.done[:] = True  # idle until a game is started in the slot
        self._slot_game = torch.full((width,), -1, dtype=torch.long)
        self._slot_seed = torch.zeros(width, dtype=torch.long, device=self._state.device)
        self._moves = MoveLog(width, self._state.device)
        self._searched: list[_Searched] = []
        self._held: list[_Finished] = []  # finished beyond what a call asked for
        self._start_games(list(range(width)))

    @property
    def in_flight(self) -> list[int]:
        """Numbers of the games begun and not yet returned by `play`."""
        playing = [n for n in self._slot_game.tolist() if n >= 0]
        return sorted(playing + [game.number for game in self._held] + self._restart)

    def checkpoint(self) -> dict:
        """What `SelfPlaySession(..., **checkpoint)` needs to continue without losing or
        repeating a game (JSON-ready)."""
        return {"seed": self.seed, "next_game": self._next_game, "restart": self.in_flight}

    def _new_number(self) -> int | None:
        if self._restart:
            return self._restart.pop(0)
        if self.game_limit is not None and self._next_game >= self.game_limit:
            return None
        self._next_game += 1
        return self._next_game - 1

    def _start_games(self, slots: list[int]) -> None:
        """A new game (or none, past the limit) in each of the slots, whose games are over."""
        started = []
        for slot in slots:
            number = self._new_number()
            self._slot_game[slot] = -1 if number is None else number
            if number is not None:
                started.append(slot)
        self._moves.clear(slots)
        if started:
            rows = torch.tensor(started, device=self._state.device)
            mask = torch.zeros(len(self._slot_game), dtype=torch.bool, device=self._state.device)
            mask[rows] = True
            self._state.assign_where_(mask, self._fresh)
            numbers = self._slot_game.index_select(0, rows.cpu()).to(self._state.device)
            self._slot_seed[rows] = game_seeds(self.seed, numbers)

    @torch.no_grad()
    def play(
        self,
        evaluator: Evaluator,
        games: int,
        model: int = 0,
        progress: bool = True,
        headers: dict[str, str] | None = None,
        on_game: Callable[[int], None] | None = None,
    ) -> SelfPlayOutput:
        """Play on until `games` games have finished, searching with `evaluator` (tagged
        `model` in the samples); `on_game(finished)` is called as each game finishes."""
        mcts = MCTS(evaluator, self.search)
        config, width = self.config, len(self._slot_game)
        finished, self._held = self._held[:games], self._held[games:]
        clock = time.perf_counter()
        bar = tqdm(total=games, desc="self-play", unit="game", disable=not progress, leave=False)
        bar.update(len(finished))
        while len(finished) < games:
            state = self._state
            live = (~state.done).nonzero().flatten()
            if not live.numel():
                raise ValueError(f"asked for {games} games, but the session's limit of {self.game_limit} is reached")
            positions = state.index(live)
            seeds = move_seeds(self._slot_seed.index_select(0, live), self._moves.count.index_select(0, live))
            result = mcts.search(positions, seeds, root_noise=True)
            noise = uniforms(seeds, NUM_SLOTS)
            chosen = torch.where(
                positions.turn < config.temperature_turns,
                choose_actions(result, config.temperature, noise=noise),
                choose_actions(result, config.final_temperature, noise=noise),
            )
            prior_logits = _to_actions(result, result.prior).clamp(min=1e-12).log()
            samples = build_samples(
                positions, _to_actions(result, result.policy), prior_logits, torch.zeros(len(live)), result.root_value
            )
            game = self._slot_game.index_select(0, live.cpu())
            sign = torch.where(positions.to_move == 0, 1.0, -1.0).cpu()
            self._searched.append(_Searched(samples, game, sign, torch.full_like(game, model)))
            self._moves.record(live, positions, chosen, result)

            actions = torch.full((width,), END, dtype=torch.long, device=state.device)
            actions[live] = chosen.to(state.device)
            self._state = state = step(state, actions, in_place=True)

            ended = live[state.done.index_select(0, live)]
            if not ended.numel():
                continue
            slots = ended.tolist()
            for slot, result_, length in zip(slots, state.result[ended].tolist(), state.turn[ended].tolist()):
                logged = self._moves.game(slot)
                texts, passes, opening = game_from_codes(logged.codes)
                number = int(self._slot_game[slot])
                done = _Finished(number, texts, passes, opening, int(result_), int(length), logged.annotations())
                if len(finished) < games:
                    finished.append(done)
                    bar.update(1)
                    if on_game is not None:
                        on_game(len(finished))
                else:
                    self._held.append(done)
            self._start_games(slots)
        bar.close()
        elapsed = time.perf_counter() - clock
        return self._output(finished, mcts.evaluations, elapsed, headers)

    def _output(self, finished: list[_Finished], evaluations: int, seconds: float, headers) -> SelfPlayOutput:
        """The finished games' samples (game by game), records and statistics; the samples
        of the games still in flight stay for a later call."""
        finished = sorted(finished, key=lambda game: game.number)
        searched = _Searched.cat(self._searched)
        numbers = torch.tensor([game.number for game in finished], dtype=torch.long)
        returned = torch.zeros(int(torch.cat([searched.game, numbers]).max()) + 1, dtype=torch.bool)
        returned[numbers] = True
        mine = returned[searched.game]
        self._searched = [searched.select(~mine)]
        searched = searched.select(mine)
        searched = searched.select(torch.sort(searched.game, stable=True).indices)
        result_of = torch.zeros(int(numbers.max()) + 1 if len(numbers) else 0, dtype=torch.float32)
        result_of[numbers] = torch.tensor([float(game.result) for game in finished])
        samples = searched.samples
        samples.value = (result_of[searched.game] * searched.sign).to(samples.value.device)
        seeds = game_seeds(self.seed, numbers).tolist()
        first = torch.full_like(result_of, 2**62, dtype=torch.long).scatter_reduce(0, searched.game, searched.model, "amin")
        last = torch.full_like(first, -1).scatter_reduce(0, searched.game, searched.model, "amax")
        records = []
        for index, (game, seed) in enumerate(zip(finished, seeds)):
            low, high = int(first[game.number]), int(last[game.number])
            models = str(low) if low == high else f"{low}-{high}"
            game_headers = {**(headers or {}), "Game": str(index + 1), "Seed": str(seed), "Models": models}
            records.append(GameRecord(game.texts, self.rules, headers=game_headers, annotations=game.annotations))
        summaries = [GameSummary(game.result, game.length, game.turns_with_pass, game.opening) for game in finished]
        output = SelfPlayOutput(samples, records, summaries, evaluations, seconds, searched_by=searched.model)
        output.stats = output_statistics(output)
        return output


def _to_actions(result, values: torch.Tensor) -> torch.Tensor:
    """Slot-indexed values [n, 49] -> [n, 897] over absolute action ids (legal slots only)."""
    values = torch.where(result.legal, values, 0.0)
    return torch.zeros(values.shape[0], NUM_ACTIONS, device=values.device).scatter_(1, result.actions, values)


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
    model: int = 0,
) -> SelfPlayOutput:
    """Play `config.games` games (numbered 0 on, from the seed stream `seed`) of the
    evaluator against itself, with root noise, and nothing beyond them: the batch drains
    at the end. `model` tags the samples and records (`Models`) with the network's
    iteration; `on_game(finished)` is called as each game finishes."""
    session = SelfPlaySession(search, config, rules, device, seed, game_limit=config.games)
    return session.play(evaluator, config.games, model, progress=progress, headers=headers, on_game=on_game)


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
        searched_by=_cat_or_none([output.searched_by for output in outputs]),
    )
    merged.stats = output_statistics(merged)
    return merged


def _cat_or_none(parts: list[torch.Tensor | None]) -> torch.Tensor | None:
    return None if any(part is None for part in parts) else torch.cat(parts)


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
