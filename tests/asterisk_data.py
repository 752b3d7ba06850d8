"""Where the tests find the real Asterisk 22 recordings: `tests/data/asterisk/`, kept in the repository.

The folder is a byte-for-byte copy of the recordings the project was built against (AMI and AGI transcripts,
the behaviour notes in README.md, measurements.md and the Asterisk configuration used). Every test reads them
from here, so a fresh clone needs nothing beside it.
"""

from __future__ import annotations

from pathlib import Path

ASTERISK_DATA = Path(__file__).resolve().parent / "data" / "asterisk"
