"""Sound lengths: how long each prompt plays, in 8 kHz samples, and which sounds do not exist.

Rules for this file:
- Lengths recorded on the real Asterisk are exact: beep 3404, vm-intro 45235, demo-congrats 242214 samples,
  silence/N is N seconds.
- Project prompts: a WAV under `<prompts_dir>/<lang>/<name>.wav` or `<prompts_dir>/<name>.wav` (or the name plus
  ".wav", absolute or relative to the working directory) gives its real length; else a length estimated from the
  prompt's text (`texts`, matched on the name or a path ending in the prompt's file); else
  `default_seconds`.  `strict=True` turns "else" into "missing", like a real Asterisk without the file.
- A name in `missing` never exists (agi-05: `this-file-does-not-exist`).
- Names come from the network: they are only ever joined under the prompts directory after rejecting "..".
"""

from __future__ import annotations

import os
import wave
from dataclasses import dataclass, field
from pathlib import Path

RATE = 8000

KNOWN_SAMPLES: dict[str, int] = {
    "beep": 3404,
    "vm-intro": 45235,
    "demo-congrats": 242214,
}

# Say-number building blocks: lengths in seconds (chosen so that SAY NUMBER 42 lasts 1.69 s as recorded).
_DIGIT_SECONDS = 0.6
_NUMBER_WORD_SECONDS = {"hundred": 0.7, "thousand": 0.8, "million": 0.8, "minus": 0.5}
_TENS_SECONDS = 1.093


def say_number_files(number: int) -> list[str]:
    """The English file sequence Asterisk's say.c uses for a number (digits/N, digits/hundred ...)."""
    files: list[str] = []
    if number < 0:
        files.append("digits/minus")
        number = -number
    if number == 0:
        return files + ["digits/0"]
    for unit, word in ((1_000_000, "million"), (1000, "thousand")):
        if number >= unit:
            files += say_number_files(number // unit) + ["digits/" + word]
            number %= unit
    if number >= 100:
        files += [f"digits/{number // 100}", "digits/hundred"]
        number %= 100
    if number >= 20:
        files.append(f"digits/{number - number % 10}")
        number %= 10
    if number:
        files.append(f"digits/{number}")
    return files


@dataclass
class SoundCatalog:
    """Where the simulator gets prompt lengths from (see the file header for the order)."""

    prompts_dir: Path | None = None
    texts: dict[str, str] = field(default_factory=dict)  # prompt file name -> spoken text
    extra_samples: dict[str, int] = field(default_factory=dict)
    missing: set[str] = field(default_factory=lambda: {"this-file-does-not-exist"})
    default_seconds: float = 2.0
    strict: bool = False
    chars_per_second: float = 14.0

    def __post_init__(self) -> None:
        self._cache: dict[tuple[str, str], int | None] = {}

    def samples(self, name: str, language: str = "en") -> int | None:
        """Length of `name` in samples, or None if Asterisk would not find the file."""
        key = (name, language)
        if key not in self._cache:
            self._cache[key] = self._lookup(name, language)
        return self._cache[key]

    def seconds(self, name: str, language: str = "en") -> float | None:
        n = self.samples(name, language)
        return None if n is None else n / RATE

    def _lookup(self, name: str, language: str) -> int | None:
        if not name or name in self.missing or "\x00" in name:
            return None
        if name in self.extra_samples:
            return self.extra_samples[name]
        if name in KNOWN_SAMPLES:
            return KNOWN_SAMPLES[name]
        if name.startswith("silence/") and name[8:].isdigit():
            return int(name[8:]) * RATE
        if name.startswith("digits/"):
            word = name[7:]
            if word in _NUMBER_WORD_SECONDS:
                return int(_NUMBER_WORD_SECONDS[word] * RATE)
            if word.isdigit():
                return int((_TENS_SECONDS if int(word) >= 20 else _DIGIT_SECONDS) * RATE)
        if name.startswith("letters/"):
            return int(0.5 * RATE)
        wav = self._find_wav(name, language)
        if wav is not None:
            return wav
        text = self._text_for(name)
        if text:
            return max(int(len(text) / self.chars_per_second * RATE), RATE // 2)
        if self.strict:
            return None
        return int(self.default_seconds * RATE)

    def _text_for(self, name: str) -> str:
        """The text of `name` or of a prompt file it ends with (the service prefixes its prompts directory)."""
        if name in self.texts:
            return self.texts[name]
        for key in sorted(self.texts, key=len, reverse=True):
            if name.endswith("/" + key):
                return self.texts[key]
        return self.texts.get(os.path.basename(name), "")

    def _find_wav(self, name: str, language: str) -> int | None:
        if ".." in Path(name).parts:
            return None
        candidates: list[Path] = []
        if os.path.isabs(name):
            candidates.append(Path(name + ".wav"))
        else:
            if self.prompts_dir is not None:
                candidates += [self.prompts_dir / language / (name + ".wav"), self.prompts_dir / (name + ".wav")]
            candidates.append(Path(name + ".wav"))  # relative to the working directory, shared with the service
        for path in candidates:
            try:
                with wave.open(str(path), "rb") as w:
                    frames, rate = w.getnframes(), w.getframerate()
            except (OSError, EOFError, wave.Error):
                continue
            return int(frames * RATE / rate) if rate else frames
        return None
