// The call list: filter and sort the calls, and draw them through the virtualised list (fixed-height rows).

import { callerText, duration, h, setText, shortAgent } from "./dom.js";
import { t } from "./i18n.js";
import { VirtualList } from "./vlist.js";

export const ROW_HEIGHT = 38;
export const STATES = ["talking", "queued", "ivr", "held", "parked", "ringing", "up"];

export class CallList {
  constructor(viewport, { store, notes, onSelect }) {
    this.store = store;
    this.notes = notes; // call id -> {ok, text}
    this.selected = null;
    this.filter = { text: "", state: "" };
    this.items = [];
    this.list = new VirtualList(viewport, {
      rowHeight: ROW_HEIGHT,
      create: () => this.createRow(),
      update: (row, call) => this.updateRow(row, call),
      clear: (row) => {
        delete row.dataset.id;
        delete row.dataset.state;
      },
    });
    viewport.addEventListener("click", (event) => {
      const row = event.target.closest(".row");
      if (row && row._item) onSelect(row._item.id);
    });
  }

  createRow() {
    const cells = {
      dur: h("span", { class: "c-dur" }),
      state: h("span", { class: "c-state" }, h("span", { class: "badge" })),
      caller: h("span", { class: "c-caller" }),
      flow: h("span", { class: "c-flow" }),
      queue: h("span", { class: "c-queue" }),
      agent: h("span", { class: "c-agent" }),
      marks: h("span", { class: "c-marks" }),
      note: h("span", { class: "c-note" }),
    };
    const row = h("div", { class: "row", role: "row" }, ...Object.values(cells));
    row._cells = cells;
    return row;
  }

  updateRow(row, call) {
    const c = row._cells;
    const now = this.store.now();
    if (row.dataset.id !== call.id) row.dataset.id = call.id;
    if (row.dataset.state !== call.state) row.dataset.state = call.state;
    row.classList.toggle("selected", call.id === this.selected);
    setText(c.dur, duration(now - call.started_at));
    const badge = c.state.firstChild;
    if (badge.dataset.state !== call.state) badge.dataset.state = call.state;
    setText(badge, t(`state_${call.state}`));
    setText(c.caller, callerText(call.number, call.name) || t("unknown_caller"));
    setText(c.flow, call.flow ? (call.node ? `${call.flow} · ${call.node}` : call.flow) : "");
    let queue = call.queue || "";
    if (queue && call.queue_since) queue += ` · ${duration(now - call.queue_since)}`;
    setText(c.queue, queue);
    setText(c.agent, shortAgent(call.agent));
    if (c.agent.title !== (call.agent || "")) c.agent.title = call.agent || "";
    const flowTitle = c.flow.textContent;
    if (c.flow.title !== flowTitle) c.flow.title = flowTitle;
    const marks = [];
    if (call.recording) marks.push(["rec", call.recording === "paused" ? t("mark_rec_paused") : t("mark_rec")]);
    if (call.space) marks.push(["parked", t("mark_parked", { space: call.space })]);
    if (call.held) marks.push(["held", t("mark_held")]);
    const key = marks.map((m) => m.join(":")).join("|");
    if (c.marks._key !== key) {
      c.marks._key = key;
      c.marks.replaceChildren(
        ...marks.map(([kind, text]) => h("span", { class: `mark mark-${kind}`, "data-mark": kind, text })),
      );
    }
    const note = this.notes.get(call.id);
    setText(c.note, note ? note.text : "");
    const noteClass = note ? (note.ok ? "c-note ok" : "c-note err") : "c-note";
    if (c.note.className !== noteClass) c.note.className = noteClass;
  }

  matches(call) {
    if (this.filter.state && call.state !== this.filter.state) return false;
    const text = this.filter.text;
    if (!text) return true;
    for (const v of [call.number, call.name, call.flow, call.node, call.queue, call.agent, call.id]) {
      if (v && String(v).toLowerCase().includes(text)) return true;
    }
    return false;
  }

  // Oldest first: the calls that have waited longest are at the top.
  rebuild() {
    const items = [];
    for (const call of this.store.calls.values()) if (this.matches(call)) items.push(call);
    items.sort((a, b) => a.started_at - b.started_at || (a.id < b.id ? -1 : 1));
    this.items = items;
    this.list.setItems(items);
  }

  render(force) {
    this.list.render(force);
  }
}
