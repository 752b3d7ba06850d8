// The actions on the selected call and on agents, through the HTTP API (docs/api.md). Actions that end
// something (hang up, transfer away, stop a recording, barge in) are confirmed first. Each result is noted next
// to the call or agent, in words.

import { callerText } from "./dom.js";
import { t } from "./i18n.js";

const NOTE_OK_MS = 15000;
const NOTE_ERROR_MS = 60000;

// What each button does: the API path and body, and whether it asks first.
const CALL_ACTIONS = {
  park: { label: "act_park", path: "park", body: (ui) => ({ lot: ui.lot() }) },
  retrieve: { label: "act_retrieve", path: "retrieve", body: (ui) => ({ agent: ui.retrieveAgent() }), needs: "agent" },
  hold: { label: "act_hold", path: "hold" },
  resume: { label: "act_resume", path: "resume" },
  "rec-start": { label: "act_rec_start", path: "recording/start" },
  "rec-pause": { label: "act_rec_pause", path: "recording/pause" },
  "rec-resume": { label: "act_rec_resume", path: "recording/resume" },
  "rec-stop": { label: "act_rec_stop", path: "recording/stop", confirm: "confirm_rec_stop" },
  listen: { label: "act_listen", path: "spy", spy: "listen" },
  whisper: { label: "act_whisper", path: "spy", spy: "whisper" },
  barge: { label: "act_barge", path: "spy", spy: "barge", confirm: "confirm_barge" },
  transfer: { label: "act_transfer", path: "transfer", confirm: "confirm_transfer", needs: "target" },
  hangup: { label: "act_hangup", path: "hangup", confirm: "confirm_hangup" },
};

// Which buttons make sense in which state (the API still has the last word: a refusal is shown next to the call).
export function enabled(action, call) {
  if (!call) return false;
  const s = call.state;
  switch (action) {
    case "park":
      return s !== "parked";
    case "retrieve":
      return s === "parked";
    case "hold":
      return s === "talking";
    case "resume":
      return s === "held";
    case "rec-start":
      return !call.recording && s !== "parked";
    case "rec-pause":
      return call.recording === "on";
    case "rec-resume":
      return call.recording === "paused";
    case "rec-stop":
      return Boolean(call.recording);
    case "listen":
    case "whisper":
    case "barge":
      return s === "talking";
    default:
      return true;
  }
}

export class Notes {
  constructor(onChange) {
    this.map = new Map();
    this.onChange = onChange;
  }

  set(key, ok, text) {
    const note = { ok, text };
    this.map.set(key, note);
    setTimeout(() => {
      if (this.map.get(key) === note) {
        this.map.delete(key);
        this.onChange();
      }
    }, ok ? NOTE_OK_MS : NOTE_ERROR_MS);
    this.onChange();
  }

  get(key) {
    return this.map.get(key);
  }

  entries() {
    return this.map.entries();
  }
}

export function confirmDialog(text) {
  const dialog = document.getElementById("confirm");
  document.getElementById("confirm-text").textContent = text;
  dialog.returnValue = "";
  dialog.showModal();
  return new Promise((resolve) => {
    dialog.addEventListener("close", () => resolve(dialog.returnValue === "ok"), { once: true });
  });
}

export function reasonDialog(title) {
  const dialog = document.getElementById("pause-dialog");
  const input = document.getElementById("pause-reason");
  document.getElementById("pause-title").textContent = title;
  input.value = "";
  dialog.returnValue = "";
  dialog.showModal();
  input.focus();
  return new Promise((resolve) => {
    dialog.addEventListener("close", () => resolve(dialog.returnValue === "ok" ? input.value.trim() : null), {
      once: true,
    });
  });
}

export async function runCallAction(action, call, { api, ui, notes }) {
  const spec = CALL_ACTIONS[action];
  const label = t(spec.label);
  const caller = callerText(call.number, call.name) || t("unknown_caller");
  let body = spec.body ? spec.body(ui) : {};
  if (spec.spy) {
    const ext = ui.myExtension();
    if (!ext) return notes.set(call.id, false, t("failed", { action: label, why: t("need_extension") }));
    body = { supervisor: ext, mode: spec.spy };
  }
  if (spec.needs === "agent" && !body.agent) {
    return notes.set(call.id, false, t("failed", { action: label, why: t("need_agent") }));
  }
  let kindText = "";
  if (action === "transfer") {
    const { kind, target } = ui.transferTarget();
    if (!target) return notes.set(call.id, false, t("failed", { action: label, why: t("need_target") }));
    body = { [kind]: target };
    kindText = t(`kind_${kind}`);
  }
  if (spec.confirm) {
    const question = t(spec.confirm, { caller, kind: kindText, target: body[Object.keys(body)[0]], ext: body.supervisor });
    if (!(await confirmDialog(question))) return;
  }
  const result = await api.post(`/calls/${encodeURIComponent(call.id)}/${spec.path}`, body);
  if (result.ok) notes.set(call.id, true, t(result.status === 202 ? "sent" : "done", { action: label }));
  else notes.set(call.id, false, t("failed", { action: label, why: result.why }));
}

export async function runAgentAction(action, queue, iface, name, { api, notes }) {
  const key = `${queue}|${iface}`;
  const path = `/queues/${encodeURIComponent(queue)}/members/${action}`;
  const label = t(action);
  let body = { interface: iface };
  if (action === "pause") {
    const reason = await reasonDialog(t("pause_title", { agent: name, queue }));
    if (reason === null) return;
    body = { interface: iface, reason: reason || null };
  }
  const result = await api.post(path, body);
  if (result.ok) notes.set(key, true, t("done", { action: label }));
  else notes.set(key, false, t("failed", { action: label, why: result.why }));
}
