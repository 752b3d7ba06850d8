// The bar under the call list: the selected call in words, its last action's result, and the action buttons
// (enabled where they make sense in the call's state).

import { callerText, setText, shortAgent } from "./dom.js";
import { enabled } from "./actions.js";
import { t } from "./i18n.js";

const $ = (id) => document.getElementById(id);

export function renderActionBar(call, selectedId, notes) {
  const bar = $("actions");
  const show = Boolean(selectedId);
  if (bar.hidden === show) bar.hidden = !show;
  if (!show) return;
  if (bar.dataset.call !== selectedId) bar.dataset.call = selectedId;
  const state = call ? call.state : "ended";
  if (bar.dataset.state !== state) bar.dataset.state = state;
  if (call) {
    setText($("sel-caller"), callerText(call.number, call.name) || t("unknown_caller"));
    const parts = [t(`state_${call.state}`)];
    if (call.flow) parts.push(call.node ? `${call.flow} · ${call.node}` : call.flow);
    if (call.queue) parts.push(call.queue);
    if (call.agent) parts.push(shortAgent(call.agent));
    if (call.space) parts.push(`${call.lot} ${call.space}`);
    setText($("sel-info"), parts.join(" · "));
  } else {
    setText($("sel-info"), t("err_unknown_call"));
  }
  const note = notes.get(selectedId);
  const msg = $("sel-msg");
  setText(msg, note ? note.text : "");
  const cls = note ? (note.ok ? "msg ok" : "msg err") : "msg";
  if (msg.className !== cls) msg.className = cls;
  for (const button of bar.querySelectorAll("button[data-act]")) {
    if (button.dataset.act === "close") continue;
    const off = !enabled(button.dataset.act, call);
    if (button.disabled !== off) button.disabled = off;
  }
}
