"""Self-play games over the API: `razzle serve` next to a run folder lists its iterations'
games and replays one turn by turn, pass chains as the ball's path."""

from __future__ import annotations

from razzle.game.notation import Annotation, GameRecord

CHAIN_GAME = ["c1-b3", "f8-g6", "e1-f3", "g6-f8", "d1-b3", "b3-f3", "end", "f8-g6"]


def write_games(run_dir, iteration: int, games: list[list[str]]) -> None:
    folder = run_dir / "replay" / f"iter_{iteration:04d}"
    folder.mkdir(parents=True)
    (folder / "games.txt").write_text("\n".join(GameRecord(g).to_text() for g in games))


def test_serve_beside_a_run_folder_lists_and_replays_its_games(start_server, tmp_path):
    run_dir = tmp_path / "2026-12-02_03-00-00"
    write_games(run_dir, 0, [["c1-b3"]])
    write_games(run_dir, 1, [["c1-b3", "f8-g6"], CHAIN_GAME])
    (run_dir / "replay" / ".tmp-half-written").mkdir()  # a writer's staging folder: not listed
    server = start_server(db=run_dir / "metrics.db")
    with server.client() as client:
        library = client.get("/training/games").json()
        assert library == {
            "runs": [
                {
                    "run": "2026-12-02_03-00-00",
                    "iterations": [{"iteration": 0, "games": 1}, {"iteration": 1, "games": 2}],
                }
            ]
        }
        games = client.get("/training/games/2026-12-02_03-00-00/1").json()["games"]
        assert [(g["index"], g["result"], g["turns"]) for g in games] == [(0, "*", 2), (1, "*", 6)]
        replay = client.get("/training/games/2026-12-02_03-00-00/1/1").json()
        missing_iteration = client.get("/training/games/2026-12-02_03-00-00/7")
        missing_game = client.get("/training/games/2026-12-02_03-00-00/1/2")
        other_run = client.get("/training/games/nobody/1")
    frames = replay["frames"]
    assert [f["token"] for f in frames] == [None, "c1-b3", "f8-g6", "e1-f3", "g6-f8", "d1-b3-f3", "f8-g6"]
    assert [f["kind"] for f in frames] == ["start", "knight", "knight", "knight", "knight", "pass", "knight"]
    chain = frames[5]
    assert (chain["mover"], chain["path"], chain["balls"][0], chain["to_move"]) == (0, ["d1", "b3", "f3"], "f3", 1)
    assert "d1" in chain["pieces"][0] and "b3" in chain["pieces"][0]
    assert frames[0]["balls"] == ["d1", "d8"] and frames[0]["turn"] == 0
    assert missing_iteration.status_code == 404 and "iteration 7" in missing_iteration.json()["detail"]
    assert missing_game.status_code == 404 and "has 2 games" in missing_game.json()["detail"]
    assert other_run.status_code == 404


def test_games_from_names_the_run_folders(start_server, tmp_path):
    run_dir = tmp_path / "runs" / "quartic on"
    write_games(run_dir, 2, [CHAIN_GAME])
    server = start_server(None, "--games-from", str(run_dir), db=tmp_path / "elsewhere.db")
    with server.client() as client:
        library = client.get("/training/games").json()
    assert library == {"runs": [{"run": "quartic-on", "iterations": [{"iteration": 2, "games": 1}]}]}


def test_a_replay_carries_the_search_where_the_record_has_it(start_server, tmp_path):
    notes = [Annotation(0.01 * n, ((action, 0.5), ("end", 0.25))) for n, action in enumerate(CHAIN_GAME)]
    notes[1] = None  # an action without annotation
    run_dir = tmp_path / "annotated"
    folder = run_dir / "replay" / "iter_0000"
    folder.mkdir(parents=True)
    games = [GameRecord(CHAIN_GAME, annotations=notes), GameRecord(CHAIN_GAME)]
    (folder / "games.txt").write_text("\n".join(g.to_text() for g in games))
    server = start_server(db=run_dir / "metrics.db")
    with server.client() as client:
        annotated = client.get("/training/games/annotated/0/0").json()["frames"]
        plain = client.get("/training/games/annotated/0/1").json()["frames"]
    assert annotated[0]["search"] == {
        "value": 0.0,
        "top": [{"move": "c1-b3", "share": 0.5}, {"move": "end", "share": 0.25}],
        "played": "c1-b3",
    }
    assert annotated[1]["search"] is None
    assert [f["search"]["value"] for f in annotated[2:5]] == [0.02, 0.03, 0.04]
    # Before the chain d1-b3-f3: the search at its start, then after each pass (b3-f3, end).
    assert annotated[4]["search"]["played"] == "d1-b3"
    assert [(s["value"], s["played"]) for s in annotated[4]["chain_searches"]] == [(0.05, "b3-f3"), (0.06, "end")]
    assert annotated[5]["search"]["played"] == "f8-g6" and annotated[5]["chain_searches"] == []
    assert annotated[-1]["search"] is None  # the last position: no search recorded after the last turn
    assert all(f["search"] is None and f["chain_searches"] == [] for f in plain)


# Player 1 wins on turn 19 with a pass chain that reaches the last row (from a self-play run).
WON_GAME = [
    "b1-c3", "b8-c6", "c1-d3", "c6-b8", "c3-d5", "c8-a7", "d5-e7", "d8-b8", "b8-a7", "end", "d1-d3", "end",
    "e8-g7", "e7-g8", "g7-e8", "f1-g3", "e8-g7", "e1-c2", "g7-e8", "d1-b2", "b8-d7", "d3-g3", "g3-g8",
]


def test_the_list_reads_records_without_replaying_them_and_a_replay_checks_its_own(start_server, tmp_path):
    """The list comes from the records' text (a long iteration lists at once); a record
    that does not replay fails its own replay with a message naming it, not the list."""
    run_dir = tmp_path / "run"
    write_games(run_dir, 0, [WON_GAME, CHAIN_GAME])
    games_file = run_dir / "replay" / "iter_0000" / "games.txt"
    games_file.write_text(games_file.read_text() + '\n[Result "*"]\n1. c1-b3 c1-b3\n')
    server = start_server(db=run_dir / "metrics.db")
    with server.client() as client:
        games = client.get("/training/games/run/0").json()["games"]
        won = client.get("/training/games/run/0/0").json()
        broken = client.get("/training/games/run/0/2")
    assert [(g["result"], g["turns"]) for g in games] == [("1-0", 19), ("*", 6), ("*", 2)]
    assert won["result"] == "1-0" and won["frames"][-1]["is_terminal"] and len(won["frames"]) == 20
    assert won["frames"][-1]["path"] == ["d3", "g3", "g8"]
    assert broken.status_code == 500
    assert "game 3" in broken.json()["detail"] and "c1-b3" in broken.json()["detail"]
