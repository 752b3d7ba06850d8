// What the page knows: the calls by id, queues, parking lots and due callbacks, as the service's snapshot and
// deltas say. It records what changed; the renderer reads and clears that once per animation frame.

export class Store {
  constructor() {
    this.calls = new Map();
    this.queues = [];
    this.lots = [];
    this.callbacks = [];
    this.instance = null;
    this.offset = 0; // service clock minus this browser's clock, seconds
    this.dirty = { calls: true, queues: true, lots: true, callbacks: true };
    this.onChange = () => {};
  }

  now() {
    return Date.now() / 1000 + this.offset;
  }

  _clock(serverTime) {
    if (typeof serverTime === "number") this.offset = serverTime - Date.now() / 1000;
  }

  // Returns true when the snapshot comes from another service instance than the last one (a restart).
  snapshot(data) {
    const restarted = this.instance !== null && this.instance !== data.instance;
    this.instance = data.instance;
    this._clock(data.server_time);
    this.calls = new Map(data.calls.map((c) => [c.id, c]));
    this.queues = data.queues;
    this.lots = data.lots;
    this.callbacks = data.callbacks;
    this.dirty = { calls: true, queues: true, lots: true, callbacks: true };
    this.onChange();
    return restarted;
  }

  delta(data) {
    this._clock(data.server_time);
    if (data.calls) for (const c of data.calls) this.calls.set(c.id, c);
    if (data.gone) for (const id of data.gone) this.calls.delete(id);
    if (data.calls || data.gone) this.dirty.calls = true;
    for (const key of ["queues", "lots", "callbacks"]) {
      if (data[key]) {
        this[key] = data[key];
        this.dirty[key] = true;
      }
    }
    this.onChange();
  }

  clear() {
    this.calls = new Map();
    this.queues = [];
    this.lots = [];
    this.callbacks = [];
    this.instance = null;
    this.dirty = { calls: true, queues: true, lots: true, callbacks: true };
  }
}
