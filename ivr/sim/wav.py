"""Write the WAV files that RECORD FILE and MixMonitor produce: 16-bit, 8 kHz, mono, 44-byte header.

Rules for this file:
- The length is what matters to tests (agi04-dtmf.wav: 2.32 s = 37164 bytes); the content is silence, with a
  quiet tone where the caller spoke so the files are not all-zero.
- Paths are decided by the caller of `write_wav` (already checked); this file only writes bytes.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Iterable
from pathlib import Path

RATE = 8000


def _tone(samples: int) -> bytes:
    period = [int(800 * math.sin(2 * math.pi * i / 20)) for i in range(20)]  # 400 Hz, quiet
    reps, rest = divmod(samples, 20)
    return struct.pack("<20h", *period) * reps + struct.pack(f"<{rest}h", *period[:rest])


def wav_bytes(samples: int, voiced: Iterable[tuple[int, int]] = ()) -> bytes:
    """A complete WAV image of `samples` samples; `voiced` are (start, end) sample ranges filled with a tone."""
    samples = max(0, samples)
    pcm = bytearray(samples * 2)
    for start, end in voiced:
        start, end = max(0, start), min(samples, end)
        if end > start:
            pcm[start * 2 : end * 2] = _tone(end - start)
    header = b"RIFF" + struct.pack("<I", 36 + len(pcm)) + b"WAVE"
    header += b"fmt " + struct.pack("<IHHIIHH", 16, 1, 1, RATE, RATE * 2, 2, 16)
    header += b"data" + struct.pack("<I", len(pcm))
    return header + bytes(pcm)


def write_wav(path: Path, samples: int, voiced: Iterable[tuple[int, int]] = ()) -> None:
    path.write_bytes(wav_bytes(samples, voiced))
