// The side panels: queues (waiting callers, agents by state with pause reasons), parking lots, callbacks due.
// Each panel is rebuilt only when what it shows changed; the ticking waits are updated in place (data-since).

import { callerText, duration, h, shortAgent } from "./dom.js";
import { t } from "./i18n.js";

const WAITING_SHOWN = 5;

function since(epoch, cls = "since") {
  return h("span", { class: cls, "data-since": String(epoch) }, "");
}

export function renderQueues(container, store, agentNotes) {
  const waiting = new Map();
  for (const call of store.calls.values()) {
    if (call.state === "queued" && call.queue) {
      if (!waiting.has(call.queue)) waiting.set(call.queue, []);
      waiting.get(call.queue).push(call);
    }
  }
  const model = store.queues.map((q) => {
    // Longest wait first (Asterisk's positions are as of each caller's join and shift as others leave).
    const callers = (waiting.get(q.name) || []).sort((a, b) => (a.queue_since || 0) - (b.queue_since || 0));
    return { q, callers };
  });
  // Skip the rebuild when nothing visible changed (waits tick in place).
  const key = JSON.stringify([
    t("queues"),
    [...agentNotes.entries()],
    model.map(({ q, callers }) => [q, callers.length, callers.slice(0, WAITING_SHOWN).map((c) => [c.id, c.number, c.name, c.queue_since])]),
  ]);
  if (container._key === key) return;
  container._key = key;
  if (!model.length) {
    container.replaceChildren(h("p", { class: "empty", text: t("no_queues") }));
    return;
  }
  container.replaceChildren(
    ...model.map(({ q, callers }) => {
      const oldest = callers.reduce((m, c) => Math.min(m, c.queue_since || Infinity), Infinity);
      const head = h(
        "div",
        { class: "q-head" },
        h("span", { class: "q-name", text: q.name }),
        h("span", { class: callers.length ? "pill warn" : "pill", text: `${callers.length} ${t("waiting")}` }),
        Number.isFinite(oldest) ? h("span", { class: "muted" }, t("longest", { t: "" }), since(oldest)) : null,
      );
      const wait = callers.length
        ? h(
            "ol",
            { class: "q-wait" },
            ...callers.slice(0, WAITING_SHOWN).map((c) =>
              h(
                "li",
                { "data-call": c.id },
                h("span", { class: "num", text: callerText(c.number, c.name) || t("unknown_caller") }),
                c.queue_since ? since(c.queue_since) : null,
              ),
            ),
            callers.length > WAITING_SHOWN
              ? h("li", { class: "muted", text: t("more_waiting", { n: callers.length - WAITING_SHOWN }) })
              : null,
          )
        : null;
      const agents = h(
        "ul",
        { class: "agents" },
        ...q.agents.map((a) => {
          const note = agentNotes.get(`${q.name}|${a.interface}`);
          const paused = a.state === "paused";
          return h(
            "li",
            { class: `agent st-${a.state}`, "data-queue": q.name, "data-interface": a.interface },
            h("span", { class: "dot" }),
            h("span", { class: "a-name", text: a.name === a.interface ? shortAgent(a.name) : a.name, title: a.interface }),
            h(
              "span",
              { class: "a-state" },
              t(`agent_${a.state}`),
              a.reason ? h("span", { class: "reason", text: ` · ${a.reason}` }) : null,
            ),
            h("span", { class: "a-calls muted", text: t("calls_taken", { n: a.calls }) }),
            h("button", {
              class: paused ? "small" : "small ghost",
              "data-agent-action": paused ? "unpause" : "pause",
              text: paused ? t("unpause") : t("pause"),
            }),
            note ? h("span", { class: note.ok ? "a-note ok" : "a-note err", text: note.text }) : null,
          );
        }),
      );
      return h("div", { class: "queue", "data-queue": q.name }, head, wait, agents);
    }),
  );
}

export function renderLots(container, store) {
  const key = JSON.stringify([t("parking"), store.lots]);
  if (container._key === key) return;
  container._key = key;
  container.replaceChildren(
    ...store.lots.map((lot) =>
      h(
        "div",
        { class: "lot", "data-lot": lot.name },
        h(
          "div",
          { class: "lot-head" },
          h("span", { class: "q-name", text: lot.name }),
          h("span", { class: lot.calls.length ? "pill info" : "pill", text: lot.calls.length || t("lot_empty") }),
        ),
        lot.calls.length
          ? h(
              "ul",
              { class: "parked" },
              ...lot.calls.map((p) =>
                h(
                  "li",
                  { "data-call": p.call_id },
                  h("span", { class: "space", text: p.space }),
                  h("span", { class: "num", text: callerText(p.number, p.name) || t("unknown_caller") }),
                  since(p.parked_at),
                  p.timeout ? h("span", { class: "muted until", "data-until": String(p.parked_at + p.timeout) }) : null,
                ),
              ),
            )
          : null,
      ),
    ),
  );
}

export function renderCallbacks(container, store) {
  const key = JSON.stringify([t("callbacks_due"), store.callbacks]);
  if (container._key === key) return;
  container._key = key;
  if (!store.callbacks.length) {
    container.replaceChildren(h("p", { class: "empty", text: t("no_callbacks") }));
    return;
  }
  container.replaceChildren(
    h(
      "ul",
      { class: "callbacks" },
      ...store.callbacks.map((cb) =>
        h(
          "li",
          { "data-callback": String(cb.id) },
          h("span", { class: "num", text: callerText(cb.number, cb.name) }),
          h("span", { class: "pill", text: cb.queue }),
          h("span", { class: "muted", text: t("attempt", { n: cb.attempts + 1, max: cb.max_attempts }) }),
          cb.due_at ? since(Date.parse(cb.due_at) / 1000) : null,
        ),
      ),
    ),
  );
}

// Tick: every element with data-since shows the time since then, data-until the time left.
export function tickTimes(root, now) {
  for (const el of root.querySelectorAll("[data-since]")) {
    const text = duration(now - Number(el.dataset.since));
    if (el.textContent !== text) el.textContent = text;
  }
  for (const el of root.querySelectorAll("[data-until]")) {
    const text = t("returns_in", { t: duration(Number(el.dataset.until) - now) });
    if (el.textContent !== text) el.textContent = text;
  }
}
