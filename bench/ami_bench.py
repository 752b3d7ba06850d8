"""AMI event throughput: events/s parsed and dispatched, for this client, panoramisk and raw socket reads.

One run measures every contender against the same loopback server (a separate process, so its cost is not
counted), which answers Login and Ping and, on `Action: Flood`, sends its response followed by N events of 11
headers each (a Newexten-like event, ~300 bytes). The clock runs from sending `Flood` until the N-th event reached
the handler.

Contenders:
- raw blocking socket: `recv_into` into a fixed buffer until all bytes arrived (the physical limit).
- raw asyncio Protocol: counts bytes in `data_received` (the limit for any asyncio client).
- ivr AMIClient: framing + routing + the subscriber's own task; handler counts (headers untouched), and a second
  row whose handler reads one header (which makes the Message split its headers).
- panoramisk (baseline): `register_event("Newexten", callback)`, callback counts; panoramisk parses every header.
- ivr parser only: the sans-IO parser over the same bytes in 64 KiB pieces, no socket.

Usage: python bench/ami_bench.py [--events N] [--repeat R] [--quick]. Prints a table and the ratios.
"""
from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import multiprocessing
import os
import socket
import sys
import time
from typing import Callable

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from ivr.ami.client import AMIClient  # noqa: E402
from ivr.ami.protocol import AMIParser, Message, Role, encode_message  # noqa: E402

BANNER = b"Asterisk Call Manager/11.0.0\r\n"
EVENT = ("Event: Newexten\r\nPrivilege: dialplan,all\r\nChannel: Local/s@ivr-main-{seq:08x};2\r\nChannelState: 6\r\n"
         "ChannelStateDesc: Up\r\nCallerIDNum: +3706{seq:07d}\r\nCallerIDName: Caller {seq}\r\nContext: ivr-main\r\n"
         "Exten: s\r\nPriority: 2\r\nUniqueid: 1795908860.{seq}\r\n\r\n")


def make_payload(count: int) -> bytes:
    return "".join(EVENT.format(seq=i) for i in range(count)).encode()


# -- server (child process) --------------------------------------------------------------------------------------

def _serve(listener: socket.socket, payload: bytes) -> None:
    while True:
        conn, _ = listener.accept()
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            _handle(conn, payload)
        except OSError:
            pass
        finally:
            conn.close()


def _handle(conn: socket.socket, payload: bytes) -> None:
    conn.sendall(BANNER)
    parser = AMIParser(Role.SERVER)
    while True:
        data = conn.recv(65536)
        if not data:
            return
        for msg in parser.feed(data):
            assert isinstance(msg, Message)
            name = (msg.name or "").lower()
            head = [("Response", "Success")] + ([("ActionID", msg.action_id)] if msg.action_id else [])
            if name == "login":
                conn.sendall(encode_message(head + [("Message", "Authentication accepted")]))
            elif name == "ping":
                conn.sendall(encode_message(head + [("Ping", "Pong"), ("Timestamp", "1795909409.461005")]))
            elif name == "flood":
                conn.sendall(encode_message(head + [("Message", "Flood follows")]) + payload)
            elif name == "logoff":
                conn.sendall(encode_message([("Response", "Goodbye")] + head[1:] +
                                            [("Message", "Thanks for all the fish.")]))
                return
            else:
                conn.sendall(encode_message([("Response", "Error")] + head[1:] + [("Message", "Unknown")]))


# -- contenders ----------------------------------------------------------------------------------------------

def bench_raw_blocking(port: int, count: int, payload_len: int) -> float:
    sock = socket.create_connection(("127.0.0.1", port))
    buf = bytearray(1 << 18)
    view = memoryview(buf)
    got = sock.recv_into(view)                    # the banner (may carry nothing else yet)
    t0 = time.perf_counter()
    sock.sendall(b"Action: Flood\r\n\r\n")
    expected = len(BANNER) + len(encode_message([("Response", "Success"), ("Message", "Flood follows")])) + payload_len
    while got < expected:
        n = sock.recv_into(view)
        if not n:
            raise RuntimeError("server closed early")
        got += n
    dt = time.perf_counter() - t0
    sock.close()
    return dt


def bench_raw_asyncio(port: int, count: int, payload_len: int) -> float:
    async def main() -> float:
        loop = asyncio.get_running_loop()
        expected = len(encode_message([("Response", "Success"), ("Message", "Flood follows")])) + payload_len
        done = loop.create_future()
        state = {"got": -len(BANNER)}

        class Counter(asyncio.Protocol):
            def data_received(self, data: bytes) -> None:
                state["got"] += len(data)
                if state["got"] >= expected and not done.done():
                    done.set_result(None)

        transport, _ = await loop.create_connection(Counter, "127.0.0.1", port)
        while state["got"] < 0:
            await asyncio.sleep(0.001)
        t0 = time.perf_counter()
        transport.write(b"Action: Flood\r\n\r\n")
        await done
        dt = time.perf_counter() - t0
        transport.close()
        return dt
    return asyncio.run(main())


def bench_ivr(port: int, count: int, read_header: bool) -> float:
    async def main() -> float:
        client = AMIClient("127.0.0.1", port, "bench", "bench", ping_interval=0)
        await client.start()
        await client.wait_logged_in(timeout=10)
        done = asyncio.get_running_loop().create_future()
        seen = 0
        sink: list[str] = []

        def handler(msg: Message) -> None:
            nonlocal seen
            seen += 1
            if read_header:
                sink.append(msg["Uniqueid"])
            if seen == count:
                done.set_result(None)

        sub = client.subscribe(handler, {"Newexten"}, maxsize=count + 1, name="bench")
        t0 = time.perf_counter()
        await client.action("Flood")
        await done
        dt = time.perf_counter() - t0
        assert sub.dropped == 0
        await client.close()
        return dt
    return asyncio.run(main())


def bench_panoramisk(port: int, count: int) -> float:
    from panoramisk import Manager

    async def main() -> float:
        loop = asyncio.get_running_loop()
        manager = Manager(loop=loop, host="127.0.0.1", port=port, username="bench", secret="bench",
                          ping_delay=3600, ping_interval=3600)
        await manager.connect()
        while not manager.authenticated:
            await asyncio.sleep(0.001)
        done = loop.create_future()
        seen = 0

        def callback(_manager: object, event: object) -> None:
            nonlocal seen
            seen += 1
            if seen == count:
                done.set_result(None)

        manager.register_event("Newexten", callback)
        t0 = time.perf_counter()
        await manager.send_action({"Action": "Flood"})
        await done
        dt = time.perf_counter() - t0
        manager.close()
        return dt
    return asyncio.run(main())


def bench_parser(payload: bytes) -> float:
    parser = AMIParser()
    parser.feed(BANNER)
    t0 = time.perf_counter()
    n = 0
    for i in range(0, len(payload), 65536):
        for msg in parser.feed(payload[i:i + 65536]):
            n += msg.name is not None  # type: ignore[union-attr]
    return time.perf_counter() - t0


# -- main ----------------------------------------------------------------------------------------------------

def best_of(repeat: int, fn: Callable[[], float]) -> float:
    times = []
    for _ in range(repeat):
        gc.collect()
        times.append(fn())
    return min(times)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--events", type=int, default=200_000, help="events per run (default 200000)")
    ap.add_argument("--repeat", type=int, default=3, help="runs per contender; the best is kept (default 3)")
    ap.add_argument("--quick", action="store_true", help="20000 events, one run (a smoke test)")
    ap.add_argument("--no-panoramisk", action="store_true", help="skip the panoramisk baseline")
    args = ap.parse_args(argv)
    count, repeat = (20_000, 1) if args.quick else (args.events, args.repeat)
    logging.basicConfig(level=logging.ERROR)

    payload = make_payload(count)
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    ctx = multiprocessing.get_context("fork")
    server = ctx.Process(target=_serve, args=(listener, payload), daemon=True)
    server.start()
    print(f"AMI bench: {count} events x 11 headers ({len(payload) / count:.0f} B each, {len(payload) / 1e6:.1f} MB), "
          f"best of {repeat}, loopback, Python {sys.version.split()[0]}, {os.cpu_count()} CPUs")

    rows: list[tuple[str, float]] = []
    try:
        rows.append(("raw socket recv_into (blocking)", best_of(repeat, lambda: bench_raw_blocking(
            port, count, len(payload)))))
        rows.append(("raw asyncio Protocol (count bytes)", best_of(repeat, lambda: bench_raw_asyncio(
            port, count, len(payload)))))
        rows.append(("ivr AMIClient (dispatch)", best_of(repeat, lambda: bench_ivr(port, count, False))))
        rows.append(("ivr AMIClient (dispatch + read a header)", best_of(repeat, lambda: bench_ivr(
            port, count, True))))
        if not args.no_panoramisk:
            try:
                rows.append(("panoramisk (baseline)", best_of(repeat, lambda: bench_panoramisk(port, count))))
            except ImportError:
                print("panoramisk is not installed (pip install '.[bench]'); baseline skipped")
        rows.append(("ivr parser only (no socket)", best_of(repeat, lambda: bench_parser(payload))))
    finally:
        server.kill()
        listener.close()

    rate = {name: count / dt for name, dt in rows}
    pano = rate.get("panoramisk (baseline)")
    raw = rate["raw socket recv_into (blocking)"]
    raw_aio = rate["raw asyncio Protocol (count bytes)"]
    print(f"\n{'contender':44} {'events/s':>12} {'time s':>8} {'x panoramisk':>13} {'raw/x':>7} {'raw-aio/x':>10}")
    for name, dt in rows:
        r = rate[name]
        vs_pano = f"{r / pano:.2f}" if pano else "-"
        print(f"{name:44} {r:12,.0f} {dt:8.3f} {vs_pano:>13} {raw / r:7.1f} {raw_aio / r:10.1f}")
    ours = rate["ivr AMIClient (dispatch)"]
    ours_h = rate["ivr AMIClient (dispatch + read a header)"]
    print()
    if pano:
        print(f"goal >= 4x panoramisk: dispatch {ours / pano:.1f}x, dispatch + header {ours_h / pano:.1f}x")
    print(f"goal within 10x of the raw read: blocking raw is {raw / ours:.1f}x (dispatch) / {raw / ours_h:.1f}x "
          f"(+header) faster; asyncio raw is {raw_aio / ours:.1f}x / {raw_aio / ours_h:.1f}x faster")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
