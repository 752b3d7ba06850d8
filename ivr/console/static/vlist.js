// A virtualised list: only the rows in view (plus a few) exist in the DOM, whatever the number of items. Rows have
// one fixed height and are reused; `update(row, item)` writes only what differs, so a frame touches few nodes.

export class VirtualList {
  constructor(viewport, { rowHeight, create, update, clear = () => {}, overscan = 6 }) {
    this.viewport = viewport;
    this.rowHeight = rowHeight;
    this.create = create;
    this.update = update;
    this.clear = clear; // a row put aside (hidden, kept for reuse) must no longer look like its last item
    this.overscan = overscan;
    this.items = [];
    this.rows = [];
    this.spacer = document.createElement("div");
    this.spacer.className = "vspacer";
    viewport.append(this.spacer);
    this.onScroll = null;
    viewport.addEventListener("scroll", () => this.onScroll && this.onScroll(), { passive: true });
  }

  setItems(items) {
    this.items = items;
    this.spacer.style.height = `${items.length * this.rowHeight}px`;
  }

  // Render the rows in view; `force` rewrites every visible row (e.g. a tick of the durations, a language change).
  // Read the geometry before anything in the frame writes to the DOM (a read after a write forces a layout).
  measure() {
    this.top = this.viewport.scrollTop;
    this.height = this.viewport.clientHeight || 600;
  }

  render(force = false) {
    if (this.top === undefined) this.measure();
    const top = this.top;
    const height = this.height;
    const first = Math.max(0, Math.floor(top / this.rowHeight) - this.overscan);
    const last = Math.min(this.items.length, Math.ceil((top + height) / this.rowHeight) + this.overscan);
    const needed = last - first;
    while (this.rows.length < needed) {
      const row = this.create();
      row.style.position = "absolute";
      row.style.left = "0";
      row.style.right = "0";
      row.style.height = `${this.rowHeight}px`;
      this.spacer.append(row);
      this.rows.push(row);
    }
    for (let i = 0; i < this.rows.length; i++) {
      const row = this.rows[i];
      const index = first + i;
      if (index >= last) {
        if (!row.hidden) {
          row.hidden = true;
          row._item = null;
          row._index = -1;
          this.clear(row);
        }
        continue;
      }
      if (row.hidden) row.hidden = false;
      if (row._index !== index) {
        row.style.transform = `translateY(${index * this.rowHeight}px)`;
        row._index = index;
      }
      const item = this.items[index];
      if (force || row._item !== item) {
        row._item = item;
        this.update(row, item, index);
      }
    }
  }

  visibleRows() {
    return this.rows.filter((r) => !r.hidden && r._item);
  }
}
