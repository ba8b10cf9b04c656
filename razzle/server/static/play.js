// Play against the AI. The server owns the game and the rules: this page draws the
// position it sends, offers the legal moves it lists, and shows its reasons for refusals.
"use strict";

const FILES = "abcdefg";
const PLAYERS = ["Player 1", "Player 2"];
const $ = (id) => document.getElementById(id);
const state = { game: null, selected: null, busy: false };

async function api(path, body) {
  const options = body === undefined ? {} : { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) };
  const response = await fetch(path, options);
  const data = await response.json().catch(() => ({}));
  if (!response.ok) {
    const detail = Array.isArray(data.detail) ? data.detail.map((d) => d.msg).join("; ") : data.detail;
    throw new Error(detail || `HTTP ${response.status}`);
  }
  return data;
}

function say(text, kind = "info") {
  const box = $("message");
  box.textContent = text;
  box.className = `message ${kind}`;
}

// --- drawing -----------------------------------------------------------------------------

function squaresTopDown() {
  // The human's side plays up the screen: Player 2 sees the board turned around.
  const flipped = state.game && state.game.human_side === 1;
  const ranks = flipped ? [1, 2, 3, 4, 5, 6, 7, 8] : [8, 7, 6, 5, 4, 3, 2, 1];
  const files = flipped ? [...FILES].reverse() : [...FILES];
  return { ranks, files };
}

function buildBoard() {
  const { ranks, files } = squaresTopDown();
  $("ranks").replaceChildren(...ranks.map((r) => Object.assign(document.createElement("span"), { textContent: r })));
  $("files").replaceChildren(...files.map((f) => Object.assign(document.createElement("span"), { textContent: f })));
  const board = $("board");
  board.replaceChildren();
  for (const rank of ranks) {
    for (const file of files) {
      const name = `${file}${rank}`;
      const square = document.createElement("button");
      square.type = "button";
      square.className = `square ${(FILES.indexOf(file) + rank) % 2 === 0 ? "light" : "dark"}`;
      square.dataset.square = name;
      square.setAttribute("aria-label", name);
      square.addEventListener("click", () => clickSquare(name));
      board.append(square);
    }
  }
}

function targetsOf(from) {
  if (!from || !humansTurn()) return new Map();
  return new Map(
    state.game.legal_moves.filter((m) => m.startsWith(`${from}-`)).map((m) => [m.split("-")[1], m]),
  );
}

function lastAISquares() {
  return new Set(state.game.last_ai_actions.filter((a) => a !== "end").flatMap((a) => a.split("-")));
}

function draw() {
  const game = state.game;
  const owner = new Map();
  game.pieces.forEach((squares, side) => squares.forEach((s) => owner.set(s, side)));
  const eligible = new Set(game.eligible);
  const balls = new Set(game.balls);
  const targets = targetsOf(state.selected);
  const last = lastAISquares();
  for (const square of $("board").children) {
    const name = square.dataset.square;
    square.classList.toggle("selected", name === state.selected);
    square.classList.toggle("target", targets.has(name));
    square.classList.toggle("occupied", owner.has(name));
    square.classList.toggle("last", last.has(name));
    square.replaceChildren();
    if (owner.has(name)) {
      const piece = document.createElement("div");
      piece.className = `piece p${owner.get(name) + 1}${eligible.has(name) ? " eligible" : ""}`;
      if (balls.has(name)) piece.append(Object.assign(document.createElement("div"), { className: "ball" }));
      square.append(piece);
    }
    square.disabled = state.busy;
  }
  drawLabels();
  drawRecord();
  $("status").textContent = game.status;
  $("end-turn").disabled = state.busy || !humansTurn() || !game.legal_moves.includes("end");
  $("ai-model").textContent = `AI: ${game.simulations} simulations, network: ${game.ai}`;
}

function drawLabels() {
  const game = state.game;
  const [bottom, top] = game.human_side === 0 ? [0, 1] : [1, 0];
  for (const [id, side] of [["bottom-label", bottom], ["top-label", top]]) {
    const label = $(id);
    const who = side === game.human_side ? "you" : "AI";
    label.innerHTML = `<span class="dot" style="background: var(--p${side + 1})"></span>${PLAYERS[side]} (${who})`;
    label.classList.toggle("to-move", !game.is_terminal && game.to_move === side);
  }
}

function drawRecord() {
  const record = state.game.record;
  const list = $("record");
  list.replaceChildren();
  for (let i = 0; i < record.length; i += 2) {
    const item = document.createElement("li");
    for (const token of record.slice(i, i + 2)) item.append(Object.assign(document.createElement("span"), { textContent: token }));
    list.append(item);
  }
  list.scrollTop = list.scrollHeight;
}

// --- playing -----------------------------------------------------------------------------

function humansTurn() {
  const game = state.game;
  return game && !game.is_terminal && game.to_move === game.human_side;
}

function update(game) {
  state.game = game;
  if (game.mid_chain && humansTurn()) state.selected = game.balls[game.human_side];
  else if (!humansTurn()) state.selected = null;
  draw();
}

// Returns whether the server accepted the action.
async function play(action) {
  if (state.busy || !state.game) return false;
  try {
    update(await api(`/game/${state.game.id}/play`, { action }));
  } catch (error) {
    say(error.message, "error");
    return false;
  }
  say("");
  if (!state.game.is_terminal && !humansTurn()) await aiTurn();
  return true;
}

async function aiTurn() {
  state.busy = true;
  $("thinking").hidden = false;
  draw();
  $("status").textContent = "The AI is thinking…";
  try {
    update(await api(`/game/${state.game.id}/ai`, {}));
    say(`The AI played ${state.game.last_ai_actions.filter((a) => a !== "end").join(", ")}.`);
  } catch (error) {
    say(`The AI could not move: ${error.message}`, "error");
  } finally {
    state.busy = false;
    $("thinking").hidden = true;
    draw();
  }
}

function clickSquare(name) {
  const game = state.game;
  if (!game || state.busy) return;
  if (game.is_terminal) return say("The game is over: start a new game.");
  if (!humansTurn()) return say("Wait for the AI's move.");
  const mine = game.pieces[game.human_side];
  const ball = game.balls[game.human_side];
  const selected = state.selected;
  const targets = targetsOf(selected);
  if (targets.has(name)) return play(targets.get(name));
  if (selected && name === selected && !game.mid_chain) {
    state.selected = null;
    return draw();
  }
  if (mine.includes(name) && !(selected === ball && name !== ball)) {
    if (game.mid_chain) return say("Mid-chain: pass again from the ball, or end your turn.");
    state.selected = name;
    say(name === ball ? "The ball: choose a piece to pass to." : `${name}: choose where to jump.`);
    return draw();
  }
  if (!selected) {
    return say(game.pieces[1 - game.human_side].includes(name) ? "That is the AI's piece." : "Select one of your pieces first.");
  }
  // Not a legal target: let the server say why (blocked pass, ineligible receiver, ...).
  return play(`${selected}-${name}`);
}

async function newGame() {
  if (state.busy) return;
  try {
    const game = await api("/game/new", { human_side: Number($("side").value), simulations: Number($("strength").value) });
    sessionStorage.setItem("razzle-game", game.id);
    state.game = game;
    state.selected = null;
    buildBoard();
    update(game);
    say(game.human_side === 0 ? "You move first: click a piece." : "The AI moves first.");
    if (!humansTurn()) await aiTurn();
  } catch (error) {
    say(`Cannot start a game: ${error.message}`, "error");
  }
}

async function resumeOrStart() {
  const id = sessionStorage.getItem("razzle-game");
  if (id) {
    try {
      const game = await api(`/game/${id}`);
      state.game = game;
      $("side").value = String(game.human_side);
      buildBoard();
      update(game);
      say("Game resumed.");
      if (!game.is_terminal && !humansTurn()) await aiTurn();
      return;
    } catch (error) {
      sessionStorage.removeItem("razzle-game");
    }
  }
  await newGame();
}

// --- the dashboard overlay ---------------------------------------------------------------

function toggleDashboard() {
  const overlay = $("dashboard-overlay");
  const frame = $("dashboard-frame");
  if (!frame.src) frame.src = "/dashboard";
  overlay.hidden = !overlay.hidden;
  if (!overlay.hidden) frame.focus();
  else document.body.focus();
}

function typing(event) {
  return ["INPUT", "SELECT", "TEXTAREA"].includes(event.target.tagName);
}

$("new-game").addEventListener("click", newGame);
$("end-turn").addEventListener("click", () => play("end"));
$("move-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const text = $("move-input").value.trim();
  if (text) play(text).then((accepted) => accepted && ($("move-input").value = ""));
});
$("open-dashboard").addEventListener("click", (event) => {
  event.preventDefault();
  toggleDashboard();
});
window.addEventListener("message", (event) => {
  if (event.origin === location.origin && event.data?.type === "razzle-toggle-dashboard") toggleDashboard();
});
document.addEventListener("keydown", (event) => {
  if (typing(event) || event.ctrlKey || event.metaKey || event.altKey) return;
  if (event.key === "t" || event.key === "T") {
    event.preventDefault();
    toggleDashboard();
  } else if (event.key === "Escape" && state.game && !state.game.mid_chain) {
    state.selected = null;
    draw();
  }
});

resumeOrStart();
