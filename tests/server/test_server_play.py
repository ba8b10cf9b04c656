"""The game API behind the play page, on a real loopback server whose AI is a test double."""

from __future__ import annotations

import httpx
import pytest

from razzle.game.position import Position
from razzle.server.app import create_app
from tests.server.conftest import serve_in_thread


@pytest.fixture
def client(play_server):
    url, _ai, _store = play_server
    with httpx.Client(base_url=url, timeout=30) as client:
        yield client


def new_game(client, human_side=0, simulations=32) -> dict:
    response = client.post("/game/new", json={"human_side": human_side, "simulations": simulations})
    assert response.status_code == 200, response.text
    return response.json()


def play(client, game, action) -> httpx.Response:
    return client.post(f"/game/{game['id']}/play", json={"action": action})


def test_a_new_game_shows_the_initial_position(client):
    game = new_game(client)
    assert game["pieces"] == [["b1", "c1", "d1", "e1", "f1"], ["b8", "c8", "d8", "e8", "f8"]]
    assert game["balls"] == ["d1", "d8"] and game["eligible"] == []
    assert game["legal_moves"] == Position.initial().legal_moves()
    assert (game["to_move"], game["turn"], game["is_terminal"], game["record"]) == (0, 0, False, [])
    assert game["status"] == "Your move."


def test_a_legal_move_is_accepted_and_the_ai_answers(client, play_server):
    _url, ai, _store = play_server
    game = new_game(client, simulations=77)
    after = play(client, game, "c1-b3").json()
    assert after["to_move"] == 1 and after["pieces"][0] == ["b1", "b3", "d1", "e1", "f1"]
    assert after["eligible"] == ["b3"] and after["status"] == "The AI is to move."
    replied = client.post(f"/game/{game['id']}/ai").json()
    assert replied["last_ai_actions"] == ["f8-g6"] and ai.calls[-1] == 77
    assert replied["record"] == ["c1-b3", "f8-g6"] and replied["to_move"] == 0
    assert client.get(f"/game/{game['id']}").json() == replied


@pytest.mark.parametrize(
    "action, reason",
    [
        ("b1-b2", "not a knight's jump"),
        ("d1-e1", "the piece on e1 is ineligible"),
        ("d1-d8", "d8 holds an opponent's piece"),
        ("end", "no pass has been made"),
        ("b8-c6", "Player 2's piece"),
        ("zz-top", "unknown square 'zz'"),
        ("hello", "expected a knight move"),
    ],
)
def test_an_illegal_move_is_refused_with_its_reason(client, action, reason):
    game = new_game(client)
    response = play(client, game, action)
    assert response.status_code == 400 and reason in response.json()["detail"]
    assert client.get(f"/game/{game['id']}").json()["actions"] == []


def test_a_pass_chain_is_played_one_pass_at_a_time_and_ended(client):
    game = new_game(client)
    for knight_move in ("c1-b3", "e1-f3"):
        play(client, game, knight_move)
        client.post(f"/game/{game['id']}/ai")
    first = play(client, game, "d1-b3").json()
    assert first["mid_chain"] and first["to_move"] == 0 and first["balls"][0] == "b3"
    assert "end" in first["legal_moves"] and first["status"] == "Pass again, or end your turn."
    second = play(client, game, "b3-f3").json()
    assert second["mid_chain"] and second["balls"][0] == "f3" and second["record"][-1] == "d1-b3-f3"
    ended = play(client, game, "end").json()
    assert not ended["mid_chain"] and ended["to_move"] == 1
    assert ended["record"] == ["c1-b3", "f8-g6", "e1-f3", "g6-f8", "d1-b3-f3"]


def test_moves_out_of_turn_are_conflicts(client):
    game = new_game(client, human_side=1)
    assert game["status"] == "The AI is to move."
    assert play(client, game, "b8-c6").status_code == 409
    client.post(f"/game/{game['id']}/ai")
    assert client.post(f"/game/{game['id']}/ai").status_code == 409


def test_unknown_games_and_bad_requests(client):
    assert client.get("/game/nosuchgame").status_code == 404
    assert "start a new game" in client.post("/game/nosuchgame/play", json={"action": "b1-c3"}).json()["detail"]
    assert client.post("/game/new", json={"human_side": 2}).status_code == 422
    assert client.post("/game/new", json={"simulations": 0}).status_code == 422


def test_an_ai_that_returns_an_illegal_turn_changes_nothing(tmp_path):
    from razzle.server.store import MetricsStore

    def broken_ai(position, simulations):
        return ["f8-g6", "g6-f8"]  # two knight moves in one turn

    app = create_app(MetricsStore(tmp_path / "m.db"), ai_factory=lambda _path: broken_ai)
    with serve_in_thread(app) as url, httpx.Client(base_url=url) as client:
        game = new_game(client)
        play(client, game, "c1-b3")
        response = client.post(f"/game/{game['id']}/ai")
        assert response.status_code == 500 and "goes past the end of its turn" in response.json()["detail"]
        state = client.get(f"/game/{game['id']}").json()
        assert state["actions"] == ["c1-b3"] and state["to_move"] == 1 and state["record"] == ["c1-b3"]
