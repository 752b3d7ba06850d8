// The supervisor console: sign in with the API token (kept in sessionStorage, sent only in the Authorization
// header), follow the live stream, and draw what changed once per animation frame.

import { renderActionBar } from "./actionbar.js";
import { Notes, runAgentAction, runCallAction } from "./actions.js";
import { Api } from "./api.js";
import { setText } from "./dom.js";
import { CallList, ROW_HEIGHT, STATES } from "./calls.js";
import { LANGUAGES, applyTexts, detectLanguage, language, setLanguage, t } from "./i18n.js";
import { renderCallbacks, renderLots, renderQueues, tickTimes } from "./panels.js";
import { Store } from "./store.js";
import { openStream } from "./stream.js";

const TOKEN_KEY = "ivr.console.token";
const EXT_KEY = "ivr.console.extension";
const $ = (id) => document.getElementById(id);

const store = new Store();
let api = null;
let stream = null;
let frameRequested = false;
let tick = false;
let filterChanged = false;
let status = { state: "connecting", seconds: 0 };
let banner = "";

let rowsChanged = false; // a note or the selection changed: rewrite the visible rows in the next frame
const callNotes = new Notes(() => {
  rowsChanged = true;
  schedule();
});
let agentsChanged = false;
const agentNotes = new Notes(() => {
  agentsChanged = true;
  schedule();
});
const callList = new CallList($("call-list"), {
  store,
  notes: callNotes,
  onSelect: (id) => select(id),
});
callList.list.onScroll = () => schedule();
store.onChange = () => schedule();

const ui = {
  lot: () => $("park-lot").value || "default",
  retrieveAgent: () => $("retrieve-agent").value.trim() || ui.myExtension(),
  myExtension: () => $("my-ext").value.trim(),
  transferTarget: () => ({ kind: $("xfer-kind").value, target: $("xfer-target").value.trim() }),
};

function select(id) {
  callList.selected = id;
  rowsChanged = true;
  schedule();
}

// --- one frame: everything that changed since the last one ----------------------------------------------------

export function schedule() {
  if (!frameRequested) {
    frameRequested = true;
    requestAnimationFrame(frame);
  }
}

function frame() {
  frameRequested = false;
  callList.list.measure(); // reads first, then only writes

  const dirty = store.dirty;
  store.dirty = { calls: false, queues: false, lots: false, callbacks: false };
  if (dirty.calls || filterChanged) {
    filterChanged = false;
    callList.rebuild();
    renderCounts();
  }
  if (dirty.queues) fillTransferOptions();
  if (dirty.calls || dirty.queues || agentsChanged) {
    agentsChanged = false;
    renderQueues($("queues"), store, agentNotes);
  }
  if (dirty.lots) {
    renderLots($("lots"), store);
    fillLots();
  }
  if (dirty.callbacks) renderCallbacks($("callbacks"), store);
  callList.render(tick || dirty.calls || rowsChanged);
  rowsChanged = false;
  if (tick || dirty.queues || dirty.calls || dirty.lots || dirty.callbacks) tickTimes($("side"), store.now());
  tick = false;
  renderActionBar(store.calls.get(callList.selected), callList.selected, callNotes);
  renderStatus();
}

// Transfer suggestions: the queues Asterisk reported, when transferring to a queue.
function fillTransferOptions() {
  const names = $("xfer-kind").value === "queue" ? store.queues.map((q) => q.name) : [];
  const list = $("xfer-options");
  if (list._key === names.join("|")) return;
  list._key = names.join("|");
  list.replaceChildren(...names.map((n) => new Option(n, n)));
}

function fillLots() {
  const select = $("park-lot");
  const names = store.lots.map((l) => l.name);
  if (!names.length) names.push("default");
  if (select._key === names.join("|")) return;
  select._key = names.join("|");
  const chosen = select.value;
  select.replaceChildren(...names.map((n) => new Option(n, n)));
  if (names.includes(chosen)) select.value = chosen;
}

function renderCounts() {
  let waiting = 0;
  let parked = 0;
  for (const c of store.calls.values()) {
    if (c.state === "queued") waiting++;
    else if (c.state === "parked") parked++;
  }
  const total = store.calls.size;
  const shown = callList.items.length;
  setText($("stat-calls"), t("calls_count", { n: total }));
  setText($("stat-waiting"), t("waiting_count", { n: waiting }));
  setText($("stat-parked"), t("parked_count", { n: parked }));
  setText($("shown-count"), t("shown", { shown, total }));
  const panel = $("calls-panel");
  if (panel.dataset.total !== String(total)) panel.dataset.total = String(total);
  if ($("empty-calls").hidden !== shown > 0) $("empty-calls").hidden = shown > 0;
}

function renderStatus() {
  const el = $("conn");
  if (el.dataset.state !== status.state) el.dataset.state = status.state;
  const text =
    status.state === "live" ? t("live") : status.state === "reconnecting" ? t("reconnecting", { s: status.seconds }) : t("connecting");
  setText($("conn-text"), text);
  setText($("banner"), banner);
  if ($("banner").hidden !== !banner) $("banner").hidden = !banner;
}

setInterval(() => {
  tick = true;
  schedule();
}, 1000);

// --- sign in and out --------------------------------------------------------------------------------------------

function showLogin(message = "") {
  $("board").hidden = true;
  $("login").hidden = false;
  $("login-error").textContent = message;
  $("token").focus();
}

function signOut(message = "") {
  if (stream) stream.close();
  stream = null;
  api = null;
  sessionStorage.removeItem(TOKEN_KEY);
  store.clear();
  callList.selected = null;
  showLogin(message);
}

function startBoard(token) {
  api = new Api(token, (code) => signOut(code === 403 ? t("bad_token") : t("err_unauthorized")));
  $("login").hidden = true;
  $("board").hidden = false;
  store.clear();
  stream = openStream({
    token,
    onSnapshot: (data) => {
      if (store.snapshot(data)) {
        banner = t("restarted");
        setTimeout(() => {
          banner = "";
          schedule();
        }, 15000);
      }
    },
    onDelta: (data) => store.delta(data),
    onStatus: (state, seconds) => {
      status = { state, seconds };
      schedule();
    },
    onAuthFailed: (code) => signOut(code === 403 ? t("bad_token") : t("err_unauthorized")),
  });
  schedule();
}

$("login-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const token = $("token").value.trim();
  $("login-error").textContent = t("signing_in");
  let response;
  try {
    response = await fetch("/queues", { headers: token ? { Authorization: `Bearer ${token}` } : {}, cache: "no-store" });
  } catch (err) {
    $("login-error").textContent = t("no_service", { detail: t("err_network") });
    return;
  }
  if (response.status === 401 || response.status === 403) {
    $("login-error").textContent = t("bad_token");
    return;
  }
  if (!response.ok) {
    $("login-error").textContent = t("no_service", { detail: `HTTP ${response.status}` });
    return;
  }
  sessionStorage.setItem(TOKEN_KEY, token);
  $("token").value = "";
  $("login-error").textContent = "";
  startBoard(token);
});

$("sign-out").addEventListener("click", () => signOut());

// --- controls ---------------------------------------------------------------------------------------------------

$("search").addEventListener("input", (event) => {
  callList.filter.text = event.target.value.trim().toLowerCase();
  filterChanged = true;
  schedule();
});
$("state-filter").addEventListener("change", (event) => {
  callList.filter.state = event.target.value;
  filterChanged = true;
  schedule();
});
$("xfer-kind").addEventListener("change", fillTransferOptions);

// Keyboard: up and down move the selection through the (filtered) list, Escape closes the action bar.
$("call-list").addEventListener("keydown", (event) => {
  const items = callList.items;
  if (event.key === "Escape") return select(null);
  if (event.key !== "ArrowDown" && event.key !== "ArrowUp") return;
  event.preventDefault();
  if (!items.length) return;
  const at = items.findIndex((c) => c.id === callList.selected);
  const next = Math.max(0, Math.min(items.length - 1, at < 0 ? 0 : at + (event.key === "ArrowDown" ? 1 : -1)));
  select(items[next].id);
  const view = $("call-list");
  const top = next * ROW_HEIGHT;
  if (top < view.scrollTop) view.scrollTop = top;
  else if (top + ROW_HEIGHT > view.scrollTop + view.clientHeight) view.scrollTop = top + ROW_HEIGHT - view.clientHeight;
});

$("my-ext").value = localStorage.getItem(EXT_KEY) || "";
$("my-ext").addEventListener("change", (event) => localStorage.setItem(EXT_KEY, event.target.value.trim()));

$("actions").addEventListener("click", (event) => {
  const button = event.target.closest("button[data-act]");
  if (!button) return;
  const call = store.calls.get(callList.selected);
  if (button.dataset.act === "close") {
    select(null);
    return;
  }
  if (call && api) runCallAction(button.dataset.act, call, { api, ui, notes: callNotes });
});

$("queues").addEventListener("click", (event) => {
  const button = event.target.closest("button[data-agent-action]");
  if (!button || !api) return;
  const li = button.closest("li.agent");
  const name = li.querySelector(".a-name").textContent;
  runAgentAction(button.dataset.agentAction, li.dataset.queue, li.dataset.interface, name, { api, notes: agentNotes });
});

for (const id of ["lots", "queues"]) {
  $(id).addEventListener("click", (event) => {
    const item = event.target.closest("[data-call]");
    if (item && store.calls.has(item.dataset.call)) select(item.dataset.call);
  });
}

function fillLanguages() {
  for (const select of document.querySelectorAll("select.lang")) {
    select.replaceChildren(...Object.entries(LANGUAGES).map(([code, name]) => new Option(name, code, false, code === language())));
    select.onchange = () => {
      setLanguage(select.value, true);
      relabel();
    };
  }
}

function fillStates() {
  const select = $("state-filter");
  const chosen = select.value;
  select.replaceChildren(new Option(t("all_states"), ""), ...STATES.map((s) => new Option(t(`state_${s}`), s)));
  select.value = chosen;
}

function relabel() {
  applyTexts();
  fillLanguages();
  fillStates();
  for (const id of ["queues", "lots", "callbacks"]) $(id)._key = null;
  store.dirty = { calls: true, queues: true, lots: true, callbacks: true };
  rowsChanged = true;
  schedule();
}

// --- start ------------------------------------------------------------------------------------------------------

setLanguage(detectLanguage());
relabel();
const saved = sessionStorage.getItem(TOKEN_KEY);
if (saved !== null) startBoard(saved);
else showLogin();
