"""An Elo ladder over a run's models: who played whom, and ratings fitted to all of it.

Once both baselines are beaten every time, only games between the run's own models say
whether later networks are still better. Each new model plays a few earlier ones (the
previous model, models 2, 4, 8, ... iterations back, and the anchor) with colours
alternated; the ratings are refitted to every result so far:

- Bradley-Terry on the Elo scale, P(i beats j) = 1 / (1 + 10^((r_j - r_i) / 400)), fitted
  by maximum likelihood (Newton's method) with a draw counted as half a win and half a
  loss, and one virtual draw added to every pair that has played, which keeps a clean
  sweep (every model against random) finite;
- the anchor (the random player, or the first model) is fixed at 0, and the 95% intervals
  come from the inverse of the observed Fisher information (the negative Hessian of the
  log-likelihood) over the other ratings: each is relative to the anchor.

The ladder persists as JSON (`<run>/ladder.json`), rewritten atomically after every pair,
so a resumed run or a second `razzle ladder` continues it and never replays a game.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from razzle.game.rules import Rules
from razzle.model.evaluator import NetworkEvaluator
from razzle.model.io import ModelFileError, load_model_file
from razzle.search import MatchResult, MCTSPlayer, RandomPlayer, SearchConfig, play_match
from razzle.search.match import Player
from razzle.search.player import OPENING_TURNS

FORMAT = "razzle-ladder"
FORMAT_VERSION = 1
RANDOM = "random"
ANCHORS = ("random", "first")
ELO_PER_NAT = 400 / math.log(10)
Z95 = 1.959963984540054
VIRTUAL_DRAWS = 1.0


class LadderError(Exception):
    """A ladder that cannot be read, continued or played; the message says why."""


@dataclass
class Entrant:
    """A player of the ladder: a model file of one iteration, or the random player."""

    name: str
    iteration: int | None
    model: str | None  # relative to the ladder file's folder where possible
    sha256: str | None


@dataclass(frozen=True)
class Rating:
    name: str
    iteration: int | None
    elo: float
    low: float
    high: float
    games: int


def model_name(iteration: int) -> str:
    return f"iter_{iteration:04d}"


def file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class Ladder:
    """The entrants, the results per ordered pair (first player's view) and the settings
    every game of the ladder is played with (ratings at other settings do not compare)."""

    def __init__(self, path: str | os.PathLike, anchor: str = "random", simulations: int = 32, c_puct: float = 1.5):
        if anchor not in ANCHORS:
            raise LadderError(f"the anchor must be one of {', '.join(ANCHORS)}, got {anchor!r}")
        try:
            SearchConfig(simulations=simulations, c_puct=c_puct)
        except ValueError as error:
            raise LadderError(str(error)) from None
        self.path = Path(path)
        self.anchor = anchor
        self.simulations = simulations
        self.c_puct = c_puct
        self.entrants: dict[str, Entrant] = {}
        self.results: dict[tuple[str, str], MatchResult] = {}
        if anchor == "random":
            self.entrants[RANDOM] = Entrant(RANDOM, None, None, None)

    # --- persistence ------------------------------------------------------------------
    @classmethod
    def open(
        cls, path: str | os.PathLike, anchor: str | None = None, simulations: int | None = None, c_puct: float | None = None
    ) -> Ladder:
        """The ladder saved at `path`, or a new one; settings left None take the saved ones
        (or the defaults), and a setting that differs from the saved ladder's is refused."""
        path = Path(path)
        if not path.exists():
            defaults = {"anchor": anchor, "simulations": simulations, "c_puct": c_puct}
            return cls(path, **{k: v for k, v in defaults.items() if v is not None})
        ladder = cls.load(path)
        for setting, wanted in (("anchor", anchor), ("simulations", simulations), ("c_puct", c_puct)):
            saved = getattr(ladder, setting)
            if wanted is not None and wanted != saved:
                raise LadderError(
                    f"{path} was played with {setting} {saved}, not {wanted}: "
                    f"use {setting} {saved} to continue it, or another ladder file"
                )
        return ladder

    @classmethod
    def load(cls, path: str | os.PathLike) -> Ladder:
        path = Path(path)
        try:
            data = json.loads(path.read_text())
            if not isinstance(data, dict) or data.get("format") != FORMAT:
                raise ValueError("it is not a razzle ladder")
            if data.get("format_version") != FORMAT_VERSION:
                raise ValueError(f"format version {data.get('format_version')!r}, this razzle reads {FORMAT_VERSION}")
            ladder = cls(path, data["anchor"], data["simulations"], data["c_puct"])
            ladder.entrants = {}
            for item in data["entrants"]:
                entrant = Entrant(item["name"], item["iteration"], item["model"], item["sha256"])
                if not isinstance(entrant.name, str) or entrant.name in ladder.entrants:
                    raise ValueError(f"bad or repeated entrant {entrant.name!r}")
                if not (entrant.iteration is None or isinstance(entrant.iteration, int)) or not all(
                    text is None or isinstance(text, str) for text in (entrant.model, entrant.sha256)
                ):
                    raise ValueError(f"bad entrant {item!r}")
                ladder.entrants[entrant.name] = entrant
            if ladder.anchor == "random" and RANDOM not in ladder.entrants:
                raise ValueError("its anchor is the random player, who is missing")
            for item in data["results"]:
                first, second = item["first"], item["second"]
                if first not in ladder.entrants or second not in ladder.entrants or first == second:
                    raise ValueError(f"a result between unknown entrants {first!r} and {second!r}")
                counts = [item[key] for key in ("wins", "draws", "losses")]
                if any(isinstance(c, bool) or not isinstance(c, int) or c < 0 for c in counts):
                    raise ValueError(f"bad game counts {counts} for {first} against {second}")
                ladder.results[first, second] = MatchResult(*counts)
        except (OSError, ValueError, KeyError, TypeError, LadderError) as error:
            raise LadderError(
                f"{path} is not a valid ladder file ({error}); move it away to start a new ladder"
            ) from None
        return ladder

    def save(self) -> Path:
        """Write the ladder (and its current ratings, for readers) to a temporary file, then rename."""
        data = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "anchor": self.anchor,
            "simulations": self.simulations,
            "c_puct": self.c_puct,
            "entrants": [vars(entrant) for entrant in self.entrants.values()],
            "results": [
                {"first": first, "second": second, "wins": r.wins, "draws": r.draws, "losses": r.losses}
                for (first, second), r in self.results.items()
            ],
            "ratings": [
                {"name": r.name, "iteration": r.iteration, "elo": _finite(r.elo), "elo_low": _finite(r.low),
                 "elo_high": _finite(r.high), "games": r.games}
                for r in self.ratings()
            ],
        }
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=self.path.parent, prefix=f".{self.path.name}.", suffix=".tmp")
        try:
            with os.fdopen(handle, "w") as file:
                json.dump(data, file, indent=1)
            os.replace(temporary, self.path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
        return self.path

    # --- entrants and results ---------------------------------------------------------
    def model_path(self, entrant: Entrant) -> Path:
        return self.path.parent / entrant.model

    def add_model(self, path: str | os.PathLike, iteration: int) -> Entrant:
        """Enter the model file of `iteration`. A file that changed since it was entered
        (a resumed run exported that iteration again) loses the games of its old self."""
        path = Path(path)
        if not path.is_file():
            raise LadderError(f"model file {path} does not exist")
        digest = file_digest(path)
        name = model_name(iteration)
        known = self.entrants.get(name)
        if known is not None and known.sha256 != digest:
            self.results = {pair: r for pair, r in self.results.items() if name not in pair}
        try:
            stored = os.path.relpath(path.resolve(), self.path.parent.resolve())
        except ValueError:  # another drive
            stored = str(path.resolve())
        self.entrants[name] = Entrant(name, iteration, stored, digest)
        return self.entrants[name]

    def record(self, first: str, second: str, result: MatchResult) -> None:
        """Add the games `first` played against `second` (result from `first`'s view)."""
        for name in (first, second):
            if name not in self.entrants:
                raise LadderError(f"{name!r} is not in the ladder")
        before = self.results.get((first, second), MatchResult(0, 0, 0))
        self.results[first, second] = MatchResult(
            before.wins + result.wins, before.draws + result.draws, before.losses + result.losses
        )

    def between(self, a: str, b: str) -> MatchResult:
        """Every game of `a` against `b`, either colour order, from `a`'s view."""
        ab = self.results.get((a, b), MatchResult(0, 0, 0))
        ba = self.results.get((b, a), MatchResult(0, 0, 0))
        return MatchResult(ab.wins + ba.losses, ab.draws + ba.draws, ab.losses + ba.wins)

    def models(self) -> list[Entrant]:
        """The model entrants in iteration order."""
        return sorted((e for e in self.entrants.values() if e.iteration is not None), key=lambda e: e.iteration)

    def anchor_name(self) -> str | None:
        if self.anchor == "random":
            return RANDOM
        models = self.models()
        return models[0].name if models else None

    # --- the fit --------------------------------------------------------------------------
    def ratings(self) -> list[Rating]:
        """Every entrant's rating relative to the anchor, random first, then by iteration;
        NaN for one not (yet) connected to the anchor by games."""
        names = list(self.entrants)
        games = {name: 0 for name in names}
        pairs = {tuple(sorted(pair)): self.between(*sorted(pair)) for pair in self.results}
        for (a, b), result in pairs.items():
            games[a] += result.games
            games[b] += result.games
        elo, spread = fit_elo(names, pairs, self.anchor_name())
        order = sorted(names, key=lambda n: -1 if self.entrants[n].iteration is None else self.entrants[n].iteration)
        return [
            Rating(n, self.entrants[n].iteration, elo[n], elo[n] - Z95 * spread[n], elo[n] + Z95 * spread[n], games[n])
            for n in order
        ]

    def rating(self, name: str) -> Rating:
        return next(r for r in self.ratings() if r.name == name)


def fit_elo(
    names: list[str], pairs: dict[tuple[str, str], MatchResult], anchor: str | None
) -> tuple[dict[str, float], dict[str, float]]:
    """(rating, standard error) per name: the Bradley-Terry maximum likelihood on the Elo
    scale, a draw as half a win and half a loss, VIRTUAL_DRAWS more draws in every pair
    that has played, `anchor` fixed at 0 (standard error 0). Names without a chain of games
    to the anchor get NaN."""
    nan = {name: math.nan for name in names}
    if anchor is None or anchor not in names:
        return dict(nan), dict(nan)
    index = {name: i for i, name in enumerate(names)}
    played = [(index[a], index[b], r) for (a, b), r in pairs.items() if r.games > 0]
    connected = _connected(index[anchor], played)
    free = [i for i in sorted(connected) if i != index[anchor]]
    elo, spread = dict(nan), dict(nan)
    elo[anchor], spread[anchor] = 0.0, 0.0
    if not free:
        return elo, spread
    column = {player: k for k, player in enumerate(free)}
    edges = [(a, b, r.games + VIRTUAL_DRAWS, r.wins + 0.5 * r.draws + 0.5 * VIRTUAL_DRAWS)
             for a, b, r in played if a in connected]
    theta = np.zeros(len(names))  # in nats: P(a beats b) = sigmoid(theta_a - theta_b)

    def log_likelihood(values: np.ndarray) -> float:
        return sum(s * _log_sigmoid(values[a] - values[b]) + (n - s) * _log_sigmoid(values[b] - values[a])
                   for a, b, n, s in edges)

    def gradient_and_information(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        gradient = np.zeros(len(free))
        information = np.zeros((len(free), len(free)))
        for a, b, n, s in edges:
            p = 1 / (1 + math.exp(values[b] - values[a]))
            weight = n * p * (1 - p)
            for player, sign in ((a, 1.0), (b, -1.0)):
                if player in column:
                    gradient[column[player]] += sign * (s - n * p)
                    information[column[player], column[player]] += weight
            if a in column and b in column:
                information[column[a], column[b]] -= weight
                information[column[b], column[a]] -= weight
        return gradient, information

    current = log_likelihood(theta)
    for _ in range(100):
        gradient, information = gradient_and_information(theta)
        step = np.linalg.solve(information, gradient)
        size = 1.0
        while True:  # Newton with step halving: the log-likelihood never falls
            trial = theta.copy()
            trial[free] += size * step
            value = log_likelihood(trial)
            if value >= current - 1e-12 or size < 1e-6:
                break
            size /= 2
        theta, current = trial, value
        if np.abs(size * step).max() < 1e-9:
            break
    _, information = gradient_and_information(theta)
    variance = np.diag(np.linalg.inv(information))
    for player, k in column.items():
        elo[names[player]] = float(theta[player] * ELO_PER_NAT)
        spread[names[player]] = float(math.sqrt(variance[k]) * ELO_PER_NAT)
    return elo, spread


def _log_sigmoid(x: float) -> float:
    return -math.log1p(math.exp(-x)) if x >= 0 else x - math.log1p(math.exp(x))


def _connected(start: int, played: list[tuple[int, int, MatchResult]]) -> set[int]:
    reached, frontier = {start}, [start]
    while frontier:
        player = frontier.pop()
        for a, b, _ in played:
            for here, there in ((a, b), (b, a)):
                if here == player and there not in reached:
                    reached.add(there)
                    frontier.append(there)
    return reached


def _finite(number: float) -> float | None:
    return number if math.isfinite(number) else None


# --- playing ------------------------------------------------------------------------------
def default_opponents(ladder: Ladder, iteration: int) -> list[str]:
    """The previous model, the latest models at least 2, 4, 8, ... iterations back, and
    the anchor: log2(run length) opponents, a direct link to the anchor for every model,
    and most games near the new model, where the ratings are closest."""
    earlier = [e for e in ladder.models() if e.iteration < iteration]
    chosen: list[str] = []
    if earlier:
        chosen.append(earlier[-1].name)
        back = 2
        while iteration - back >= earlier[0].iteration:
            candidates = [e for e in earlier if e.iteration <= iteration - back]
            chosen.append(candidates[-1].name)
            back *= 2
    anchor = ladder.anchor_name()
    if anchor is not None and anchor != model_name(iteration):
        chosen.append(anchor)
    return list(dict.fromkeys(chosen))


def rate_new_model(
    ladder: Ladder,
    model_path: str | os.PathLike,
    iteration: int,
    games: int,
    opponents: list[str] | None = None,
    device: str | torch.device = "cpu",
    seed: int = 0,
    progress: bool = False,
) -> dict[str, float]:
    """Play the model of `iteration` against `opponents` (default: `default_opponents`)
    until each pair has `games` games, save the ladder after every pair, refit, and return
    the model's `elo`, `elo_low` and `elo_high` (relative to the anchor; NaN while it has
    no chain of games to it). Games already in the ladder are never played again."""
    if isinstance(games, bool) or not isinstance(games, int) or games < 1:
        raise LadderError(f"games must be a positive integer, got {games!r}")
    if isinstance(iteration, bool) or not isinstance(iteration, int) or iteration < 0:
        raise LadderError(f"iteration must be an integer >= 0, got {iteration!r}")
    new = ladder.add_model(model_path, iteration)
    opponents = default_opponents(ladder, iteration) if opponents is None else opponents
    unknown = [name for name in opponents if name not in ladder.entrants or name == new.name]
    if unknown:
        raise LadderError(f"cannot play {new.name} against {', '.join(map(repr, unknown))}: not another ladder entrant")
    config = SearchConfig(simulations=ladder.simulations, c_puct=ladder.c_puct)
    player_seed = seed * 1_000_003 + iteration * 1_009
    loaded = None
    for number, name in enumerate(opponents):
        already = ladder.between(new.name, name).games
        if already >= games:
            continue
        if loaded is None:  # only when something is left to play
            loaded = _load(Path(model_path), device)
        network, rules = loaded
        pair_seed = player_seed + 31 * number + already
        mine = MCTSPlayer(NetworkEvaluator(network, device), config, seed=pair_seed, opening_turns=OPENING_TURNS)
        theirs = _opponent(ladder, name, config, device, pair_seed + 1)
        # An odd number already played: the opponent starts this batch, so colours stay balanced.
        if already % 2:
            ladder.record(name, new.name, play_match(theirs, mine, games - already, rules, device, progress))
        else:
            ladder.record(new.name, name, play_match(mine, theirs, games - already, rules, device, progress))
        ladder.save()
    ladder.save()
    rating = ladder.rating(new.name)
    return {"elo": rating.elo, "elo_low": rating.low, "elo_high": rating.high}


def _load(path: Path, device: str | torch.device):
    try:
        network, metadata = load_model_file(path, map_location=device)
        rules = Rules(**metadata["rules"]) if isinstance(metadata.get("rules"), dict) else Rules()
    except (ModelFileError, TypeError, ValueError) as error:
        raise LadderError(str(error)) from None
    return network, rules


def _opponent(ladder: Ladder, name: str, config: SearchConfig, device, seed: int) -> Player:
    entrant = ladder.entrants[name]
    if entrant.model is None:
        return RandomPlayer(seed=seed)
    path = ladder.model_path(entrant)
    if not path.is_file():
        raise LadderError(f"the model file of {name}, {path}, is missing")
    if file_digest(path) != entrant.sha256:
        raise LadderError(f"the model file of {name}, {path}, changed since it was entered; rate it again first")
    network, _ = _load(path, device)
    return MCTSPlayer(NetworkEvaluator(network, device), config, seed=seed, opening_turns=OPENING_TURNS)
