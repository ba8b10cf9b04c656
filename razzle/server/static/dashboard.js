// The training dashboard: reads the training API and draws one uPlot chart per metric,
// one line per run, so runs (e.g. quartic loss on and off) compare side by side.
"use strict";

const REFRESH_MS = 5000;
const PAGE = 10000;
const PALETTE = ["#2f6fde", "#d9822b", "#1b8a4b", "#9b3fc4", "#c62f2f", "#138d90", "#7a6f00", "#e0529c"];

// A chart is a metric name, or a derived series {name, title, value(entry, previous)}.
const GAMES_PER_HOUR = {
  name: "games_per_hour",
  title: "Games per hour",
  about: "self-play throughput: selfplay_games_per_s × 3600, or games over the time between iterations",
  value: (entry, previous) => {
    if (entry.selfplay_games_per_s != null) return entry.selfplay_games_per_s * 3600;
    if (entry.games == null || !previous) return null;
    const hours = (Date.parse(entry.timestamp) - Date.parse(previous.timestamp)) / 3.6e6;
    return hours > 0 ? entry.games / hours : null;
  },
};

const TABS = {
  overview: { charts: ["elo", "loss_total", "policy_top1_accuracy", "policy_ebf", "value_calibration_error"], open: true },
  policy: {
    charts: ["policy_top1_accuracy", "policy_top3_accuracy", "policy_entropy", "legal_mass", "policy_ebf", "policy_confidence"],
  },
  value: {
    charts: ["value_mean", "value_std", "value_extremity", "value_calibration_error", "value_confident_accuracy", "value_skill", "search_value_skill"],
    reliability: true,
  },
  pass: { charts: ["pass_decision_rate", "game_length_mean", "game_length_std", "p1_win_rate", "draw_rate"] },
  loss: {
    charts: ["loss_total", "policy_loss", "value_loss", "value_loss_quartic", "difficulty_loss", "illegal_penalty", "lr"],
  },
  infrastructure: {
    charts: [GAMES_PER_HOUR, "selfplay_evals_per_s", "games", "positions", "iteration_seconds"],
    tables: true,
  },
};

const TITLES = {
  elo: "Elo (ladder over iterations)",
  loss_total: "Total loss",
  policy_top1_accuracy: "Policy top-1 accuracy",
  policy_top3_accuracy: "Policy top-3 accuracy",
  policy_entropy: "Policy entropy",
  policy_ebf: "Effective branching factor",
  policy_confidence: "Policy confidence",
  legal_mass: "Legal mass",
  value_mean: "Value mean",
  value_std: "Value std",
  value_extremity: "Value extremity",
  value_calibration_error: "Value calibration error",
  value_confident_accuracy: "Confident value accuracy",
  value_skill: "Value skill (vs the mean outcome)",
  search_value_skill: "Search value skill (the search's root value, same positions)",
  policy_loss: "Policy loss",
  value_loss: "Value loss (MSE)",
  value_loss_quartic: "Value loss, quartic term",
  difficulty_loss: "Difficulty loss",
  illegal_penalty: "Illegal-move penalty",
  lr: "Learning rate",
  pass_decision_rate: "Pass decision rate",
  game_length_mean: "Game length (mean)",
  game_length_std: "Game length (std)",
  p1_win_rate: "Player 1 win rate",
  draw_rate: "Draw rate",
  selfplay_evals_per_s: "Self-play evaluations per second",
  games: "Games per iteration",
  positions: "Positions per iteration",
  iteration_seconds: "Seconds per iteration",
};

const PHASE_TEXT = {
  selfplay: (p) => `self-play ${p.done}/${p.total} games`,
  training: (p) => `training ${p.done}/${p.total}`,
  evaluation: (p) => `evaluation ${p.done}/${p.total} games`,
  finished: () => "finished",
};

const state = {
  tab: "overview",
  writesNeedToken: false,
  targets: [], // phases of the training plan: {name, first_iteration, last_iteration, bands}
  paused: false,
  entries: [],
  summary: null,
  models: [],
  names: {},
  hiddenRuns: new Set(),
  signature: "",
  charts: [],
};

const $ = (id) => document.getElementById(id);

async function getJSON(url) {
  const response = await fetch(url);
  if (!response.ok) throw new Error(`${url}: HTTP ${response.status}`);
  return response.json();
}

async function fetchEntries() {
  const entries = [];
  for (let offset = 0; ; offset += PAGE) {
    const page = await getJSON(`/training/metrics?limit=${PAGE}&offset=${offset}`);
    entries.push(...page.metrics);
    if (entries.length >= page.total || page.metrics.length === 0) return entries;
  }
}

async function refresh() {
  try {
    const summary = await getJSON("/training/dashboard");
    const signature = `${summary.last_update}|${summary.iterations}|${summary.models}`;
    state.summary = summary;
    if (signature !== state.signature) {
      const [entries, models] = await Promise.all([fetchEntries(), getJSON("/training/models")]);
      state.entries = entries;
      state.models = models.models;
      state.signature = signature;
      render();
    } else {
      renderHeader();
    }
    $("error").textContent = "";
  } catch (error) {
    $("error").textContent = `Cannot reach the server (${error.message}); retrying every ${REFRESH_MS / 1000} s.`;
  }
}

// --- header, run toggles, summary ------------------------------------------------------

function runNames() {
  return [...new Set(state.entries.map((e) => e.run))].sort();
}

function colorOf(run) {
  return PALETTE[runNames().indexOf(run) % PALETTE.length];
}

// "iteration 3: self-play 23/64 games", with the run's name when several runs report.
function progressText(progress) {
  const named = progress.length > 1;
  return progress
    .map((p) => `${named ? `${p.run} · ` : ""}iteration ${p.iteration}: ${PHASE_TEXT[p.phase](p)}`)
    .join("  ·  ");
}

// Hints name this server's own address, whatever port it was given.
function renderHints() {
  const origin = location.origin;
  const auth = state.writesNeedToken ? ` \\\n  -H "Authorization: Bearer $RAZZLE_SERVER_TOKEN"` : "";
  $("hint-train").textContent = `python train.py server.url=${origin}`;
  $("hint-curl").textContent =
    `curl -X POST ${origin}/training/metrics -H 'Content-Type: application/json'${auth} \\\n` +
    `  -d '{"run": "demo", "iteration": 0, "metrics": {"loss_total": 2.5}}'`;
}

function renderEmpty(working) {
  $("empty-title").textContent = working.length ? `Training: ${progressText(working)}` : "No metrics available";
  $("empty-running").hidden = !working.length;
  $("empty-hints").hidden = working.length > 0;
}

function renderHeader() {
  const s = state.summary;
  if (!s) return;
  const status = $("status");
  status.textContent = s.status;
  status.className = `pill ${s.status}`;
  const working = (s.progress || []).filter((p) => p.fresh);
  $("progress").textContent = progressText(working);
  renderEmpty(working);
  renderTargetStatus();
  $("last-update").textContent = s.last_update ? `last update ${new Date(s.last_update).toLocaleString()}` : "";
  $("stat-runs").textContent = s.runs.length;
  $("stat-iterations").textContent = s.iterations.toLocaleString();
  $("stat-games").textContent = s.games.toLocaleString();
  $("stat-positions").textContent = s.positions.toLocaleString();
  $("stat-model").textContent = s.latest_model ? `${s.latest_model.run} · ${s.latest_model.version}` : "none";
  $("stat-workers").textContent = s.workers.length;
}

function renderRunToggles() {
  const box = $("runs");
  box.replaceChildren(
    ...runNames().map((run) => {
      const label = document.createElement("label");
      label.className = "run-toggle";
      const input = document.createElement("input");
      input.type = "checkbox";
      input.checked = !state.hiddenRuns.has(run);
      input.addEventListener("change", () => {
        input.checked ? state.hiddenRuns.delete(run) : state.hiddenRuns.add(run);
        renderCharts();
        renderTargetStatus();
      });
      const swatch = document.createElement("span");
      swatch.className = "swatch";
      swatch.style.background = colorOf(run);
      label.append(input, swatch, document.createTextNode(run));
      return label;
    }),
  );
}

// --- charts ----------------------------------------------------------------------------

function visibleEntries() {
  const from = $("from").value === "" ? -Infinity : Number($("from").value);
  const to = $("to").value === "" ? Infinity : Number($("to").value);
  return state.entries.filter((e) => !state.hiddenRuns.has(e.run) && e.iteration >= from && e.iteration <= to);
}

function seriesByRun(entries, spec) {
  const byRun = new Map();
  for (const run of [...new Set(entries.map((e) => e.run))].sort()) {
    const rows = entries.filter((e) => e.run === run).sort((a, b) => a.iteration - b.iteration);
    const points = new Map();
    rows.forEach((entry, i) => {
      const value = typeof spec === "string" ? entry[spec] : spec.value(entry, rows[i - 1]);
      if (value != null && Number.isFinite(value)) points.set(entry.iteration, value);
    });
    if (points.size) byRun.set(run, points);
  }
  return byRun;
}

// uPlot wants one shared x array: the union of iterations, with nulls where a run has none.
function aligned(byRun) {
  const xs = [...new Set([...byRun.values()].flatMap((points) => [...points.keys()]))].sort((a, b) => a - b);
  return [xs, ...[...byRun.values()].map((points) => xs.map((x) => (points.has(x) ? points.get(x) : null)))];
}

function chartCard(name, title, about) {
  const card = document.createElement("div");
  card.className = "card chart-card";
  card.dataset.metric = name;
  const heading = document.createElement("h3");
  heading.textContent = title;
  const text = document.createElement("p");
  text.className = "about";
  text.innerHTML = `<code>${name}</code>${about ? ` · ${about}` : ""}`;
  const plot = document.createElement("div");
  plot.className = "plot";
  card.append(heading, text, plot);
  return card;
}

function plotWidth(element) {
  return Math.max(280, Math.floor(element.getBoundingClientRect().width));
}

function drawLines(plot, byRun, yLabel) {
  const runs = [...byRun.keys()];
  const options = {
    width: plotWidth(plot),
    height: 240,
    scales: { x: { time: false } },
    axes: [{ label: "iteration", labelSize: 20 }, { size: 64 }],
    series: [
      { label: "iteration" },
      ...runs.map((run) => ({
        label: run,
        stroke: colorOf(run),
        width: 2,
        spanGaps: true,
        points: { show: byRun.get(run).size < 60 },
      })),
    ],
    legend: { live: true },
    cursor: { drag: { x: true, y: false } },
  };
  if (yLabel) options.axes[1].label = yLabel;
  const bands = bandsOf(plot.closest(".chart-card").dataset.metric);
  if (bands.length) {
    const levels = bands.flatMap((b) => [b.target, b.red_flag]);
    options.scales.y = {
      range: (_u, min, max) => uPlot.rangeNum(Math.min(min, ...levels), Math.max(max, ...levels), 0.1, true),
    };
    options.hooks = { draw: [(u) => drawBands(u, bands)] };
  }
  state.charts.push(new uPlot(options, aligned(byRun), plot));
}

// --- the training plan's targets and red flags -----------------------------------------

function bandsOf(metric) {
  return state.targets.flatMap((phase) =>
    phase.bands.filter((b) => b.metric === metric).map((b) => ({ ...b, phase: phase.name, first: phase.first_iteration, last: phase.last_iteration })),
  );
}

function rangeText(band) {
  return band.last == null ? `${band.first}+` : `${band.first}–${band.last}`;
}

function limitsText(band) {
  const [good, bad] = band.lower_is_better ? ["<", ">"] : [">", "<"];
  return `target ${good} ${band.target}, red flag ${bad} ${band.red_flag}`;
}

function bandText(band) {
  return `${band.phase} (iterations ${rangeText(band)}): ${limitsText(band)}`;
}

// Per phase: the red-flag side tinted red, the target side green, dashed lines at both.
function drawBands(u, bands) {
  const { ctx, bbox } = u;
  const xs = u.data[0];
  ctx.save();
  ctx.beginPath();
  ctx.rect(bbox.left, bbox.top, bbox.width, bbox.height);
  ctx.clip();
  for (const band of bands) {
    const x0 = u.valToPos(band.first, "x", true);
    const x1 = band.last == null ? bbox.left + bbox.width : u.valToPos(band.last + 1, "x", true);
    if (!xs.length || x1 < bbox.left || x0 > bbox.left + bbox.width) continue;
    const left = Math.max(x0, bbox.left);
    const width = Math.min(x1, bbox.left + bbox.width) - left;
    const yTarget = u.valToPos(band.target, "y", true);
    const yRed = u.valToPos(band.red_flag, "y", true);
    const top = bbox.top;
    const bottom = bbox.top + bbox.height;
    // Canvas y grows downwards: "lower is better" puts the target side below its line.
    const okZone = band.lower_is_better ? [yTarget, bottom] : [top, yTarget];
    const redZone = band.lower_is_better ? [top, yRed] : [yRed, bottom];
    ctx.fillStyle = "rgba(27, 138, 75, 0.07)";
    ctx.fillRect(left, okZone[0], width, okZone[1] - okZone[0]);
    ctx.fillStyle = "rgba(198, 47, 47, 0.08)";
    ctx.fillRect(left, redZone[0], width, redZone[1] - redZone[0]);
    ctx.setLineDash([6, 4]);
    ctx.lineWidth = 1.5;
    for (const [y, color] of [[yTarget, "#1b8a4b"], [yRed, "#c62f2f"]]) {
      ctx.strokeStyle = color;
      ctx.beginPath();
      ctx.moveTo(left, y);
      ctx.lineTo(left + width, y);
      ctx.stroke();
    }
    ctx.setLineDash([]);
  }
  ctx.restore();
}

function bandsNote(card, metric) {
  const bands = bandsOf(metric);
  if (!bands.length) return;
  const note = document.createElement("p");
  note.className = "targets-note";
  note.textContent = bands.map(bandText).join(" · ");
  card.querySelector(".about").after(note);
}

const STATUS_TEXT = { ok: "ok", watch: "watch", red_flag: "red flag" };

function statusChip(run, iteration, m) {
  const chip = document.createElement("span");
  chip.className = `chip ${m.status}`;
  chip.dataset.run = run;
  chip.dataset.metric = m.metric;
  chip.title = `iteration ${iteration}, ${m.phase} training: ${limitsText(m)}`;
  chip.textContent = `${run} · ${m.metric} ${Number(m.value.toPrecision(3))} · ${STATUS_TEXT[m.status]}`;
  return chip;
}

function renderTargetStatus() {
  const runs = (state.summary?.targets || []).filter((r) => !state.hiddenRuns.has(r.run) && r.metrics.length);
  const box = $("target-status");
  box.hidden = !runs.length;
  const label = document.createElement("span");
  label.className = "label";
  label.textContent = "Training plan";
  box.replaceChildren(label, ...runs.flatMap((r) => r.metrics.map((m) => statusChip(r.run, r.iteration, m))));
}

function noData(plot, name) {
  plot.innerHTML = `<div class="no-data">no <code>${name}</code> recorded for the runs and iterations shown</div>`;
}

function reliabilityCard(entries) {
  const card = chartCard("reliability", "Reliability diagram (latest iteration of each run)", "");
  card.querySelector(".about").textContent =
    "mean outcome against mean predicted value, in 10 bins of predicted value; the diagonal is perfect calibration";
  const plot = card.querySelector(".plot");
  $("charts").append(card);
  const latest = new Map();
  for (const entry of entries) {
    if (!entry.reliability) continue;
    const best = latest.get(entry.run);
    if (!best || entry.iteration > best.iteration) latest.set(entry.run, entry);
  }
  if (!latest.size) return noData(plot, "reliability");
  const byRun = new Map([["perfect", new Map([[-1, -1], [1, 1]])]]);
  for (const [run, entry] of [...latest.entries()].sort()) {
    const points = new Map();
    for (const bin of entry.reliability) if (bin.count > 0) points.set(bin.mean_value, bin.mean_outcome);
    byRun.set(`${run} (iteration ${entry.iteration})`, points);
  }
  const names = [...byRun.keys()];
  const options = {
    width: plotWidth(plot),
    height: 240,
    scales: { x: { time: false, range: [-1, 1] }, y: { range: [-1, 1] } },
    axes: [{ label: "mean predicted value", labelSize: 20 }, { label: "mean outcome", size: 64 }],
    series: [
      { label: "value" },
      ...names.map((name, i) =>
        i === 0
          ? { label: "perfect", stroke: "#9aa3b2", dash: [6, 4], width: 1, spanGaps: true, points: { show: false } }
          : {
              label: name,
              stroke: colorOf(name.replace(/ \(iteration \d+\)$/, "")),
              width: 2,
              spanGaps: true,
              points: { show: true, size: 7 },
            },
      ),
    ],
  };
  state.charts.push(new uPlot(options, aligned(byRun), plot));
}

function chartsOf(tab, entries) {
  const specs = [...TABS[tab].charts];
  if (TABS[tab].open) {
    const extra = new Set(entries.flatMap((e) => Object.keys(e).filter((k) => k.startsWith("eval_") || k.startsWith("x_"))));
    specs.push(...[...extra].sort());
  }
  return specs;
}

function renderCharts() {
  state.charts.forEach((chart) => chart.destroy());
  state.charts = [];
  const box = $("charts");
  box.replaceChildren();
  $("tables").replaceChildren();
  const empty = state.entries.length === 0;
  $("empty").hidden = !empty;
  // The actors, workers and models exist before the first iteration's metrics do.
  if (TABS[state.tab].tables) renderTables();
  if (empty) return;
  const entries = visibleEntries();
  for (const spec of chartsOf(state.tab, entries)) {
    const name = typeof spec === "string" ? spec : spec.name;
    const title = typeof spec === "string" ? TITLES[name] || name : spec.title;
    const about = typeof spec === "string" ? state.names[name] : spec.about;
    const card = chartCard(name, title, about);
    bandsNote(card, name);
    box.append(card);
    const byRun = seriesByRun(entries, spec);
    const plot = card.querySelector(".plot");
    byRun.size ? drawLines(plot, byRun) : noData(plot, name);
  }
  if (TABS[state.tab].reliability) reliabilityCard(entries);
}

// --- infrastructure tables ---------------------------------------------------------------

function table(title, columns, rows) {
  const card = document.createElement("div");
  card.className = "card";
  const heading = document.createElement("h3");
  heading.textContent = title;
  const element = document.createElement("table");
  const head = element.createTHead().insertRow();
  columns.forEach(([label, numeric]) => {
    const th = document.createElement("th");
    th.textContent = label;
    if (numeric) th.className = "num";
    head.append(th);
  });
  const body = element.createTBody();
  for (const row of rows) {
    const tr = body.insertRow();
    row.forEach((cell, i) => {
      const td = tr.insertCell();
      if (columns[i][1]) td.className = "num";
      cell instanceof Node ? td.append(cell) : (td.textContent = cell);
    });
  }
  if (!rows.length) body.insertRow().insertCell().textContent = "none yet";
  card.append(heading, element);
  return card;
}

function renderTables() {
  const workers = (state.summary?.workers || []).map((w) => [w.name, new Date(w.last_seen).toLocaleString(), w.posts]);
  const models = [...state.models].reverse().map((m) => {
    const link = document.createElement("a");
    link.href = m.download_url;
    link.textContent = "download";
    return [m.run, m.version, m.iteration, `${(m.size / 1e6).toFixed(2)} MB`, new Date(m.uploaded_at).toLocaleString(), link];
  });
  const actors = (state.summary?.progress || []).flatMap((p) =>
    (p.actors || []).map((a) => [p.run, a.actor, a.node, a.state, a.games, a.games_per_s.toFixed(2), a.restarts]),
  );
  $("tables").append(
    table(
      "Self-play actors",
      [["run"], ["actor", true], ["node"], ["state"], ["games", true], ["games/s", true], ["restarts", true]],
      actors,
    ),
    table("Workers", [["worker"], ["last seen"], ["posts", true]], workers),
    table("Models", [["run"], ["version"], ["iteration", true], ["size", true], ["uploaded"], [""]], models),
  );
}

// --- wiring ----------------------------------------------------------------------------

function render() {
  renderHeader();
  renderRunToggles();
  renderCharts();
}

function selectTab(tab) {
  if (!TABS[tab]) tab = "overview";
  state.tab = tab;
  document.querySelectorAll(".tabs button").forEach((b) => b.setAttribute("aria-selected", String(b.dataset.tab === tab)));
  if (location.hash !== `#${tab}`) history.replaceState(null, "", `#${tab}`);
  renderCharts();
}

function togglePlay() {
  if (window.parent !== window) window.parent.postMessage({ type: "razzle-toggle-dashboard" }, location.origin);
  else location.href = "/";
}

function typing(event) {
  return ["INPUT", "SELECT", "TEXTAREA"].includes(event.target.tagName);
}

document.querySelectorAll(".tabs button").forEach((b) => b.addEventListener("click", () => selectTab(b.dataset.tab)));
$("from").addEventListener("input", renderCharts);
$("to").addEventListener("input", renderCharts);
$("pause").addEventListener("click", () => {
  state.paused = !state.paused;
  $("pause").textContent = state.paused ? "Resume" : "Pause";
  if (!state.paused) refresh();
});
$("to-play").addEventListener("click", (event) => {
  event.preventDefault();
  togglePlay();
});
document.addEventListener("keydown", (event) => {
  if ((event.key === "t" || event.key === "T") && !event.ctrlKey && !event.metaKey && !event.altKey && !typing(event)) {
    event.preventDefault();
    togglePlay();
  }
});
window.addEventListener("hashchange", () => selectTab(location.hash.slice(1)));
new ResizeObserver(() => state.charts.forEach((c) => c.setSize({ width: plotWidth(c.root.parentElement), height: 240 }))).observe($("charts"));

(async function start() {
  const optional = (url, fallback) => getJSON(url).catch(() => fallback);
  const [names, health, targets] = await Promise.all([
    optional("/training/metric-names", { known: {} }),
    optional("/health", { writes_need_token: false }),
    optional("/training/targets", { phases: [] }),
  ]);
  state.names = names.known;
  state.writesNeedToken = health.writes_need_token;
  state.targets = targets.phases;
  renderHints();
  selectTab(location.hash.slice(1) || "overview"); // after the hints: an empty store shows them at once
  await refresh();
  setInterval(() => state.paused || document.hidden || refresh(), REFRESH_MS);
})();
