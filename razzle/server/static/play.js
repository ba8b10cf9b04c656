// Play against the AI. The server owns the game and the rules: this page draws the
// position it sends, offers the legal moves it lists, and shows its reasons for refusals.
"use strict";

const FILES = "abcdefg";
const PLAYERS = ["Player 1", "Player 2"];
const $ = (id) => document.getElementById(id);
const state = { game: null, selected: null, busy: false, replay: null };

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
  const flipped = !state.replay && state.game && state.game.human_side === 1;
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

// The piece on `name`, if any: its owner's colour, eligibility and ball.
function placePiece(square, name, owner, eligible, balls) {
  if (!owner.has(name)) return;
  const piece = document.createElement("div");
  piece.className = `piece p${owner.get(name) + 1}${eligible.has(name) ? " eligible" : ""}`;
  if (balls.has(name)) piece.append(Object.assign(document.createElement("div"), { className: "ball" }));
  square.append(piece);
}

function draw() {
  if (state.replay) return; // the board shows a replayed game until "Back to my game"
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
    placePiece(square, name, owner, eligible, balls);
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
  if (state.replay) {
    say("Go back to your game to play.", "error");
    return false;
  }
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
  if (state.replay) return say("Replaying a self-play game: step with ◀ ▶ or go back to your game.");
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

// --- replaying self-play games ------------------------------------------------------------

const RESULTS = { "1-0": "Player 1 won", "0-1": "Player 2 won", "1/2-1/2": "draw", "*": "unfinished" };

function options(select, items) {
  select.replaceChildren(...items.map(([value, text]) => Object.assign(document.createElement("option"), { value, textContent: text })));
}

async function loadLibrary() {
  let library;
  try {
    library = await api("/training/games");
  } catch (error) {
    return;
  }
  state.library = library.runs.filter((r) => r.iterations.length);
  $("replay-card").hidden = !state.library.length;
  if (!state.library.length) return;
  options($("replay-run"), state.library.map((r) => [r.run, r.run]));
  await pickRun();
}

async function pickRun() {
  const run = state.library.find((r) => r.run === $("replay-run").value);
  const newest = [...run.iterations].reverse();
  options($("replay-iteration"), newest.map((i) => [i.iteration, `iteration ${i.iteration} (${i.games} games)`]));
  await pickIteration();
}

async function pickIteration() {
  const list = await api(`/training/games/${$("replay-run").value}/${$("replay-iteration").value}`);
  options($("replay-game"), list.games.map((g) => [g.index, `game ${g.index + 1}: ${RESULTS[g.result] || g.result}, ${g.turns} turns`]));
}

async function openReplay() {
  try {
    const game = await api(`/training/games/${$("replay-run").value}/${$("replay-iteration").value}/${$("replay-game").value}`);
    state.replay = { game, step: 0 };
    state.selected = null;
    buildBoard();
    $("replay-controls").hidden = false;
    say("Step through the turns with ◀ ▶ or the arrow keys.");
    showFrame(0);
  } catch (error) {
    say(`Cannot open the game: ${error.message}`, "error");
  }
}

function closeReplay() {
  state.replay = null;
  $("replay-controls").hidden = true;
  $("replay-search").hidden = true;
  if (!state.game) return;
  buildBoard();
  update(state.game);
  say("Back to your game.");
}

function squareCenter(name) {
  const square = $("board").querySelector(`[data-square='${name}']`);
  return [square.offsetLeft + square.offsetWidth / 2, square.offsetTop + square.offsetHeight / 2];
}

// The ball's path of a pass chain, drawn over the board.
function drawBallPath(path) {
  const board = $("board");
  board.querySelector(".ball-path")?.remove();
  if (path.length < 2) return;
  const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
  svg.setAttribute("class", "ball-path");
  svg.setAttribute("width", board.clientWidth);
  svg.setAttribute("height", board.clientHeight);
  const line = document.createElementNS("http://www.w3.org/2000/svg", "polyline");
  line.setAttribute("points", path.map((s) => squareCenter(s).join(",")).join(" "));
  svg.append(line);
  board.append(svg);
}

function showFrame(step) {
  const { game } = state.replay;
  state.replay.step = Math.max(0, Math.min(step, game.frames.length - 1));
  const frame = game.frames[state.replay.step];
  const owner = new Map();
  frame.pieces.forEach((squares, side) => squares.forEach((sq) => owner.set(sq, side)));
  const eligible = new Set(frame.eligible);
  const balls = new Set(frame.balls);
  for (const square of $("board").querySelectorAll(".square")) {
    const name = square.dataset.square;
    square.classList.remove("selected", "target", "last", "suggested");
    square.classList.toggle("occupied", owner.has(name));
    square.classList.toggle("path", frame.path.includes(name));
    square.replaceChildren();
    placePiece(square, name, owner, eligible, balls);
    if (frame.kind === "pass" && frame.path.includes(name)) {
      const order = frame.path.indexOf(name);
      square.append(Object.assign(document.createElement("span"), { className: "path-step", textContent: order }));
    }
    square.disabled = false;
  }
  drawBallPath(frame.kind === "pass" ? frame.path : []);
  drawSearch(frame);
  const last = game.frames.length - 1;
  $("replay-step").textContent = `turn ${state.replay.step} / ${last}`;
  const described = frame.token
    ? `${PLAYERS[frame.mover]}: ${frame.token}${frame.kind === "pass" ? " (pass chain)" : ""}`
    : "the start";
  const end = state.replay.step === last ? ` · ${RESULTS[game.result] || game.result}` : "";
  $("status").textContent = `${game.run} iteration ${game.iteration}, game ${game.index + 1}: ${described}${end}`;
  for (const [id, side] of [["bottom-label", 0], ["top-label", 1]]) {
    $(id).textContent = PLAYERS[side];
    $(id).classList.toggle("to-move", !frame.is_terminal && frame.to_move === side);
  }
  $("end-turn").disabled = true;
}

const percent = (share) => `${Math.round(share * 100)}%`;
const signed = (value) => (value >= 0 ? "+" : "") + value.toFixed(3);

function topMovesText(search) {
  return search.top.map((t) => `${t.move} ${percent(t.share)}`).join(", ") || "none visited";
}

// What the search thought in the frame's position (recorded by self-play): its value as a
// number and a bar, its most visited moves, the searches inside the next turn's pass chain,
// and the top move's squares outlined on the board. Hidden for records without it.
function drawSearch(frame) {
  const search = frame.search;
  $("replay-search").hidden = !search;
  if (!search) return;
  $("search-heading").textContent = `Search before the next turn, ${PLAYERS[frame.to_move]} to move:`;
  $("search-value").textContent = `value ${signed(search.value)}`;
  const fill = $("search-value-fill");
  const half = Math.min(Math.abs(search.value), 1) * 50;
  fill.style.left = `${search.value >= 0 ? 50 : 50 - half}%`;
  fill.style.width = `${half}%`;
  fill.classList.toggle("negative", search.value < 0);
  $("search-top").replaceChildren(
    ...search.top.map((t) => {
      const item = document.createElement("li");
      item.textContent = `${t.move} ${percent(t.share)}${t.move === search.played ? " (played)" : ""}`;
      item.classList.toggle("played", t.move === search.played);
      return item;
    }),
  );
  $("search-chain").replaceChildren(
    ...frame.chain_searches.map((s) =>
      Object.assign(document.createElement("li"), {
        textContent: `in the chain, before ${s.played}: ${signed(s.value)} · ${topMovesText(s)}`,
      }),
    ),
  );
  const best = search.top[0]?.move;
  if (best && best !== "end") {
    for (const name of best.split("-")) $("board").querySelector(`[data-square='${name}']`)?.classList.add("suggested");
  }
}

$("replay-run").addEventListener("change", pickRun);
$("replay-iteration").addEventListener("change", pickIteration);
$("replay-open").addEventListener("click", openReplay);
$("replay-close").addEventListener("click", closeReplay);
$("replay-first").addEventListener("click", () => showFrame(0));
$("replay-prev").addEventListener("click", () => showFrame(state.replay.step - 1));
$("replay-next").addEventListener("click", () => showFrame(state.replay.step + 1));
$("replay-last").addEventListener("click", () => showFrame(Infinity));

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
  } else if (state.replay && (event.key === "ArrowLeft" || event.key === "ArrowRight")) {
    event.preventDefault();
    showFrame(state.replay.step + (event.key === "ArrowRight" ? 1 : -1));
  } else if (event.key === "Escape" && state.game && !state.game.mid_chain) {
    state.selected = null;
    draw();
  }
});

resumeOrStart();
loadLibrary();
