// The live stream GET /events read with fetch() (EventSource cannot send the Authorization header, and the token
// must never go in a URL). Server-Sent Events framing is parsed here; on any end or error the stream reconnects
// with a growing delay, and the first message of every connection is a full snapshot, so a restart of the service
// costs the page nothing but a few seconds.

const SILENCE_LIMIT_MS = 40000; // the service sends a heartbeat comment every 15 s

export function openStream({ token, onSnapshot, onDelta, onStatus, onAuthFailed }) {
  let stopped = false;
  let controller = null;
  let delay = 500;

  async function once() {
    controller = new AbortController();
    let watchdog = null;
    const arm = () => {
      clearTimeout(watchdog);
      watchdog = setTimeout(() => controller.abort(), SILENCE_LIMIT_MS);
    };
    try {
      arm();
      const headers = { Accept: "text/event-stream" };
      if (token) headers.Authorization = `Bearer ${token}`;
      const response = await fetch("/events", { headers, cache: "no-store", signal: controller.signal });
      if (response.status === 401 || response.status === 403) {
        stopped = true;
        onAuthFailed(response.status);
        return;
      }
      if (!response.ok || !response.body) throw new Error(`HTTP ${response.status}`);
      const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
      let buffer = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        arm();
        buffer += value;
        let end;
        while ((end = buffer.indexOf("\n\n")) >= 0) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          let event = "message";
          const data = [];
          for (const line of block.split("\n")) {
            if (line.startsWith(":")) continue; // heartbeat
            if (line.startsWith("event:")) event = line.slice(6).trim();
            else if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""));
          }
          if (!data.length) continue;
          const payload = JSON.parse(data.join("\n"));
          if (event === "snapshot") {
            delay = 500;
            onStatus("live");
            onSnapshot(payload);
          } else if (event === "delta") {
            onDelta(payload);
          }
        }
      }
    } catch (err) {
      if (stopped) return;
    } finally {
      clearTimeout(watchdog);
    }
  }

  async function loop() {
    while (!stopped) {
      onStatus("connecting");
      await once();
      if (stopped) return;
      onStatus("reconnecting", Math.round(delay / 1000) || 1);
      await new Promise((resolve) => setTimeout(resolve, delay));
      delay = Math.min(delay * 2, 8000);
    }
  }

  loop();
  return {
    close() {
      stopped = true;
      if (controller) controller.abort();
    },
  };
}
