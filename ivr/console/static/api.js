// Calls to the service's HTTP API (docs/api.md) with the bearer token; failures come back as words.

import { t } from "./i18n.js";

export class Api {
  constructor(token, onSignedOut) {
    this.token = token;
    this.onSignedOut = onSignedOut;
  }

  headers() {
    const headers = { "Content-Type": "application/json" };
    if (this.token) headers.Authorization = `Bearer ${this.token}`;
    return headers;
  }

  // {ok, status, data} or {ok: false, status, why}: `why` is a sentence in the page's language.
  async request(method, path, body) {
    let response;
    try {
      response = await fetch(path, {
        method,
        headers: this.headers(),
        body: body === undefined ? undefined : JSON.stringify(body),
        cache: "no-store",
      });
    } catch (err) {
      return { ok: false, status: 0, why: t("err_network") };
    }
    let data = null;
    try {
      data = await response.json();
    } catch (err) {
      data = null;
    }
    if (response.ok) return { ok: true, status: response.status, data };
    if (response.status === 401 || response.status === 403) this.onSignedOut(response.status);
    return { ok: false, status: response.status, why: explain(response.status, data) };
  }

  post(path, body = {}) {
    return this.request("POST", path, body);
  }
}

export function explain(status, data) {
  const code = data && typeof data.error === "string" ? data.error : "";
  const key = `err_${code}`;
  const word = t(key) !== key ? t(key) : `HTTP ${status}`;
  let detail = data ? data.detail : null;
  if (Array.isArray(detail)) {
    detail = detail.map((d) => (d && d.message ? `${d.field ? d.field + ": " : ""}${d.message}` : String(d))).join("; ");
  } else if (detail && typeof detail !== "string") {
    detail = JSON.stringify(detail);
  }
  return detail ? `${word} (${detail})` : word;
}
