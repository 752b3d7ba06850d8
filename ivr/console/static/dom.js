// Small DOM helpers. Data from the service (caller names, numbers, reasons) only ever goes in as text, never as
// markup.

export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "class") el.className = value;
    else if (key === "text") el.textContent = value;
    else if (key.startsWith("data-")) el.setAttribute(key, value);
    else if (key in el) el[key] = value;
    else el.setAttribute(key, value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

export function setText(el, text) {
  if (el._text !== text) {
    el._text = text;
    el.textContent = text;
  }
}

// 75 -> "1:15", 3725 -> "1:02:05".
export function duration(seconds) {
  const s = Math.max(0, Math.floor(seconds));
  const hours = Math.floor(s / 3600);
  const minutes = Math.floor((s % 3600) / 60);
  const secs = String(s % 60).padStart(2, "0");
  return hours ? `${hours}:${String(minutes).padStart(2, "0")}:${secs}` : `${minutes}:${secs}`;
}

export function callerText(number, name) {
  if (number && name && name !== number) return `${number} · ${name}`;
  return number || name || "";
}

// "Local/agent0@agents" -> "agent0", "PJSIP/1001" -> "1001": the part a supervisor recognises (the full interface
// stays in the element's title).
export function shortAgent(name) {
  if (!name) return "";
  const m = /^[A-Za-z0-9_]+\/([^@;]+)/.exec(name);
  return m ? m[1] : name;
}
