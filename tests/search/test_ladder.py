"""The Elo ladder: the fit on synthetic results from known ratings, its persistence, and
real (tiny, short) games between untrained model files through `rate_new_model` and
`razzle ladder`."""

import json
import math

import numpy as np
import pytest
import torch

from razzle.search.ladder import (
    RANDOM,
    Entrant,
    Ladder,
    LadderError,
    default_opponents,
    fit_elo,
    model_name,
    rate_new_model,
)
from razzle.cli import main
from razzle.model.io import save_model_file
from razzle.model.network import RazzleNet
from razzle.search import MatchResult

SHORT_RULES = {"max_turns": 2, "repetition_draw": True}  # keeps the real games to seconds


def synthetic_result(rng: np.random.Generator, elo_a: float, elo_b: float, games: int, draw_share: float) -> MatchResult:
    """`games` outcomes whose expected score is the Elo expectation; draws most common
    between equals (at most `draw_share` of the games)."""
    p = 1 / (1 + 10 ** ((elo_b - elo_a) / 400))
    draw = draw_share * 4 * p * (1 - p)
    outcomes = rng.choice(3, size=games, p=[p - draw / 2, draw, 1 - p - draw / 2])
    return MatchResult(*(int((outcomes == k).sum()) for k in range(3)))


def synthetic_ladder(tmp_path, true: dict[str, float], games: int, seed: int, anchor: str = "random") -> Ladder:
    """A ladder whose entrants played the default schedule with results drawn from `true`."""
    rng = np.random.default_rng(seed)
    ladder = Ladder(tmp_path / "ladder.json", anchor=anchor)
    for name in true:
        if name != RANDOM:
            iteration = int(name.removeprefix("iter_"))
            ladder.entrants[name] = Entrant(name, iteration, f"models/{name}.pt", "0" * 64)
            for opponent in default_opponents(ladder, iteration):
                ladder.record(name, opponent, synthetic_result(rng, true[name], true[opponent], games, 0.3))
    return ladder


TRUE = {RANDOM: 0.0, **{model_name(i): 40.0 + 90 * i - 4 * i * i for i in range(8)}}


def test_the_fit_recovers_known_ratings_within_their_intervals(tmp_path):
    ladder = synthetic_ladder(tmp_path, TRUE, games=400, seed=0)
    ratings = ladder.ratings()
    assert [r.name for r in ratings] == list(TRUE)
    anchor = ratings[0]
    assert (anchor.elo, anchor.low, anchor.high) == (0.0, 0.0, 0.0)
    for rating in ratings[1:]:
        assert rating.low <= TRUE[rating.name] <= rating.high, rating
        assert rating.high - rating.low < 90  # 400 games a pair pin each rating down
    assert ladder.rating("iter_0007").games == 400 * 4  # iterations 6, 5 and 3, and random


def test_the_95_percent_intervals_cover_the_true_ratings_about_95_percent_of_the_time():
    true = {"a": 0.0, "b": 80.0, "c": 200.0, "d": 350.0}
    schedule = [("b", "a"), ("c", "b"), ("c", "a"), ("d", "c"), ("d", "b"), ("d", "a")]
    rng = np.random.default_rng(1)
    covered = []
    for _ in range(200):
        pairs = {(a, b): synthetic_result(rng, true[a], true[b], 100, 0.0) for a, b in schedule}
        elo, spread = fit_elo(list(true), pairs, "a")
        covered += [abs(elo[n] - true[n]) <= 1.96 * spread[n] for n in "bcd"]
    assert 0.92 <= np.mean(covered) <= 0.98


def test_either_anchor_gives_the_same_differences():
    names = ["random", "iter_0000", "iter_0001", "iter_0002"]
    pairs = {
        ("iter_0000", "random"): MatchResult(30, 2, 8),
        ("iter_0001", "iter_0000"): MatchResult(22, 4, 14),
        ("iter_0001", "random"): MatchResult(35, 1, 4),
        ("iter_0002", "iter_0001"): MatchResult(20, 6, 14),
        ("iter_0002", "iter_0000"): MatchResult(27, 3, 10),
    }
    by_random, spread_random = fit_elo(names, pairs, "random")
    by_first, spread_first = fit_elo(names, pairs, "iter_0000")
    assert by_random["random"] == 0.0 and spread_random["random"] == 0.0
    assert by_first["iter_0000"] == 0.0 and spread_first["iter_0000"] == 0.0
    shift = by_random["iter_0000"]
    for name in names:
        assert by_first[name] == pytest.approx(by_random[name] - shift, abs=1e-6)
    assert spread_random["iter_0000"] == pytest.approx(spread_first["random"])


def test_a_clean_sweep_stays_finite_and_an_unconnected_entrant_has_no_rating():
    names = ["random", "iter_0000", "iter_0001"]
    elo, spread = fit_elo(names, {("iter_0000", "random"): MatchResult(20, 0, 0)}, "random")
    # One virtual draw: a score of 20.5 / 21, about 640 Elo.
    assert elo["iter_0000"] == pytest.approx(400 * math.log10(20.5 / 0.5), rel=1e-6)
    assert math.isfinite(spread["iter_0000"])
    assert math.isnan(elo["iter_0001"]) and math.isnan(spread["iter_0001"])


def test_the_default_opponents_are_the_previous_model_powers_of_two_back_and_the_anchor(tmp_path):
    for anchor, last in (("random", RANDOM), ("first", "iter_0000")):
        ladder = Ladder(tmp_path / f"{anchor}.json", anchor=anchor)
        for i in range(10):
            ladder.entrants[model_name(i)] = Entrant(model_name(i), i, None, None)
        assert default_opponents(ladder, 10) == ["iter_0009", "iter_0008", "iter_0006", "iter_0002", last]
        assert default_opponents(ladder, 1) == (["iter_0000", RANDOM] if anchor == "random" else ["iter_0000"])
        assert default_opponents(ladder, 0) == ([RANDOM] if anchor == "random" else [])


def test_the_ladder_round_trips_through_its_json_file(tmp_path):
    ladder = synthetic_ladder(tmp_path, TRUE, games=50, seed=2)
    ladder.save()
    loaded = Ladder.load(ladder.path)
    assert (loaded.anchor, loaded.simulations, loaded.c_puct) == (ladder.anchor, ladder.simulations, ladder.c_puct)
    assert loaded.entrants == ladder.entrants
    assert loaded.results == ladder.results
    assert loaded.ratings() == ladder.ratings()
    saved = json.loads(ladder.path.read_text())["ratings"]
    assert [r["name"] for r in saved] == list(TRUE)
    assert not list(tmp_path.glob(".ladder.json.*"))  # no temporary file left behind


def test_a_ladder_file_is_continued_only_with_its_own_settings(tmp_path):
    Ladder(tmp_path / "ladder.json", anchor="first", simulations=8).save()
    assert Ladder.open(tmp_path / "ladder.json").simulations == 8
    assert Ladder.open(tmp_path / "ladder.json", anchor="first", simulations=8).anchor == "first"
    with pytest.raises(LadderError, match="played with simulations 8, not 16"):
        Ladder.open(tmp_path / "ladder.json", simulations=16)
    with pytest.raises(LadderError, match="played with anchor first, not random"):
        Ladder.open(tmp_path / "ladder.json", anchor="random")


@pytest.mark.parametrize(
    "text, reason",
    [
        ("{not json", "Expecting property name"),
        ('{"format": "razzle-model"}', "not a razzle ladder"),
        ('{"format": "razzle-ladder", "format_version": 7}', "format version 7"),
        ('{"format": "razzle-ladder", "format_version": 1, "anchor": "random"}', "'simulations'"),
    ],
)
def test_a_corrupt_ladder_file_is_refused_with_its_reason(tmp_path, text, reason):
    (tmp_path / "ladder.json").write_text(text)
    with pytest.raises(LadderError, match="is not a valid ladder file") as error:
        Ladder.open(tmp_path / "ladder.json")
    assert reason in str(error.value)


def bad_results_file(tmp_path) -> None:
    ladder = Ladder(tmp_path / "ladder.json")
    ladder.entrants["iter_0000"] = Entrant("iter_0000", 0, "models/iter_0000.pt", "0" * 64)
    ladder.record("iter_0000", RANDOM, MatchResult(1, 0, 1))
    data = json.loads(ladder.save().read_text())
    data["results"][0]["wins"] = -3
    ladder.path.write_text(json.dumps(data))


def test_negative_game_counts_are_refused(tmp_path):
    bad_results_file(tmp_path)
    with pytest.raises(LadderError, match=r"bad game counts \[-3, 0, 1\]"):
        Ladder.load(tmp_path / "ladder.json")


# --- real games between tiny untrained models ------------------------------------------------
def tiny_run(folder, iterations=3):
    """A run folder with untrained tiny models whose rules end a game after two turns."""
    for i in range(iterations):
        torch.manual_seed(i)
        save_model_file(RazzleNet.of_size("tiny"), folder / "models" / f"iter_{i:04d}.pt",
                        {"iteration": i, "rules": SHORT_RULES})
    return folder


def test_rate_new_model_plays_each_pair_once_and_a_resumed_ladder_plays_nothing_twice(tmp_path):
    run = tiny_run(tmp_path / "run", iterations=2)
    ladder = Ladder.open(run / "ladder.json", anchor="random", simulations=2)
    first = rate_new_model(ladder, run / "models" / "iter_0000.pt", 0, games=2)
    assert set(first) == {"elo", "elo_low", "elo_high"} and first["elo_low"] <= first["elo"] <= first["elo_high"]
    metrics = rate_new_model(ladder, run / "models" / "iter_0001.pt", 1, games=2)
    assert {pair: r.games for pair, r in ladder.results.items()} == {
        ("iter_0000", RANDOM): 2, ("iter_0001", "iter_0000"): 2, ("iter_0001", RANDOM): 2
    }
    saved = (run / "ladder.json").read_text()

    resumed = Ladder.open(run / "ladder.json")
    assert rate_new_model(resumed, run / "models" / "iter_0001.pt", 1, games=2) == metrics
    assert resumed.results == ladder.results
    assert json.loads((run / "ladder.json").read_text()) == json.loads(saved)

    rate_new_model(resumed, run / "models" / "iter_0001.pt", 1, games=3, opponents=["iter_0000"])
    assert resumed.between("iter_0001", "iter_0000").games == 3  # one more game, not three
    rate_new_model(resumed, run / "models" / "iter_0001.pt", 1, games=4, opponents=["iter_0000"])
    # After an odd number the opponent goes first, so each side has had Player 1 twice.
    assert resumed.results["iter_0001", "iter_0000"].games == 3
    assert resumed.results["iter_0000", "iter_0001"].games == 1


def test_a_model_file_exported_again_loses_the_games_of_its_old_self(tmp_path):
    run = tiny_run(tmp_path / "run", iterations=2)
    ladder = Ladder.open(run / "ladder.json", anchor="first", simulations=2)
    rate_new_model(ladder, run / "models" / "iter_0000.pt", 0, games=2)
    rate_new_model(ladder, run / "models" / "iter_0001.pt", 1, games=2)
    torch.manual_seed(99)
    save_model_file(RazzleNet.of_size("tiny"), run / "models" / "iter_0001.pt", {"iteration": 1, "rules": SHORT_RULES})
    ladder.add_model(run / "models" / "iter_0001.pt", 1)
    assert ladder.results == {}
    # Iteration 0 now differs from the file it was entered with.
    save_model_file(RazzleNet.of_size("tiny"), run / "models" / "iter_0000.pt", {"iteration": 0, "rules": SHORT_RULES})
    save_model_file(RazzleNet.of_size("tiny"), run / "models" / "iter_0002.pt", {"iteration": 2, "rules": SHORT_RULES})
    with pytest.raises(LadderError, match="iter_0000.pt, changed since it was entered"):
        rate_new_model(ladder, run / "models" / "iter_0002.pt", 2, games=2, opponents=["iter_0000"])


def test_razzle_ladder_rates_a_run_prints_a_table_and_draws_the_plot(tmp_path, capsys):
    run = tiny_run(tmp_path / "run")
    assert main(["ladder", str(run), "--games", "2", "--simulations", "2", "--anchor", "first"]) == 0
    out = capsys.readouterr().out
    assert "3 models, 6 games played now (2 simulations, c_puct 1.5, anchor first)" in out
    table = out.splitlines()[1:5]
    assert table[0].split() == ["iteration", "elo", "95%", "interval", "games"]
    assert table[1].split() == ["0", "0", "anchor", "4"]
    assert [row.split()[0] for row in table[2:]] == ["1", "2"]
    assert (run / "elo.png").read_bytes().startswith(b"\x89PNG")
    assert len(json.loads((run / "ladder.json").read_text())["ratings"]) == 3

    assert main(["ladder", str(run), "--games", "2"]) == 0  # the ladder's own settings, nothing to play
    assert "3 models, 0 games played now" in capsys.readouterr().out


@pytest.mark.parametrize(
    "setup, arguments, message",
    [
        (lambda run: run.mkdir(), [], "has no models (expected"),
        (lambda run: None, [], "is not a folder"),
        (lambda run: tiny_run(run, 1), ["--games", "0"], "--games must be at least 1"),
        (lambda run: (tiny_run(run, 1) / "ladder.json").write_text("]"), [], "ladder.json is not a valid ladder file"),
        (lambda run: Ladder(tiny_run(run, 1) / "ladder.json", simulations=4).save(), ["--simulations", "8"],
         "was played with simulations 4, not 8"),
    ],
)
def test_razzle_ladder_refuses_bad_input_with_one_line(tmp_path, setup, arguments, message):
    run = tmp_path / "run"
    setup(run)
    with pytest.raises(SystemExit) as error:
        main(["ladder", str(run), *arguments])
    text = str(error.value)
    assert text.startswith("razzle ladder: ") and message in text and "\n" not in text
