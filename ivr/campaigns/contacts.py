"""Contact lists and do-not-call lists as CSV: parse, check every row, report every problem with its line.

Rules for this file:
- Pure: bytes in, rows and problems out (stdlib csv). UTF-8 (a BOM is fine), comma, semicolon or tab separated
  (what spreadsheets export), a header row naming the columns: `number` (required), `name`, `language`,
  `timezone`; every other column is a variable set on the contact's call (its header must be a variable name).
- Numbers may be written with spaces, dashes, dots or parentheses (they are removed) and must then fully match
  the dial-out pattern (callbacks.number_pattern): what a campaign dials is what the service may dial.
- A bad row never stops the reading: every problem is reported (line, column, what is wrong, what to do), so
  the admin fixes the file once. The caller decides what to store (the API stores nothing when any row is bad).
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ivr import telephony
from ivr.calls import validate
from ivr.calls.errors import CallControlError

KNOWN_COLUMNS = ("number", "name", "language", "timezone")
_FORMATTING = re.compile(r"[\s\-.()/]")
_TEXT = re.compile(validate.TEXT_PATTERN)
MAX_VARIABLES = 20


@dataclass(frozen=True)
class RowProblem:
    line: int  # 1 = the header
    column: str  # "" for the whole row or file
    message: str  # what is wrong and what to do

    def to_json(self) -> dict[str, object]:
        return {"line": self.line, "column": self.column, "message": self.message}


@dataclass
class ContactRow:
    line: int
    number: str
    name: str = ""
    language: str = ""
    timezone: str = ""
    variables: dict[str, str] = field(default_factory=dict)


@dataclass
class Parsed:
    rows: list[ContactRow]
    problems: list[RowProblem]


class CSVTooLarge(ValueError):
    """More rows than allowed (the message says the limit)."""


def clean_number(raw: str) -> str:
    return _FORMATTING.sub("", raw.strip())


def check_number(raw: str, pattern: re.Pattern[str]) -> tuple[str, str | None]:
    """(the number without formatting, a problem or None)."""
    number = clean_number(raw)
    if not number:
        return number, "the number is empty; write the contact's phone number"
    if not telephony.is_callback_number(number, pattern):
        return number, (
            f"{number[:40]!r} is not a number this service may call (callbacks.number_pattern is "
            f"{pattern.pattern}); write it in that form, e.g. with the country code"
        )
    return number, None


def _text(data: bytes) -> tuple[str | None, RowProblem | None]:
    try:
        return data.decode("utf-8-sig"), None
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        return None, RowProblem(line, "", "the file is not UTF-8 text; save it as CSV UTF-8 from your spreadsheet")


_QUOTED = re.compile(r'"[^"]*"')
DELIMITERS = (",", ";", "\t")


class _Semicolon(csv.excel):
    delimiter = ";"


def _dialect(text: str) -> type[csv.Dialect]:
    """The delimiter used most in the header line outside quotes (comma on a tie or none). Counted, not sniffed:
    csv.Sniffer's regular expressions take quadratic time on a long quoted header (80 KB: 1.5 s, on the loop)."""
    end = text.find("\n")
    header = _QUOTED.sub("", text if end < 0 else text[:end])
    delimiter = max(DELIMITERS, key=header.count)  # max keeps the first of equals: ","
    if delimiter == ";":
        return _Semicolon
    return csv.excel_tab if delimiter == "\t" else csv.excel


def _rows(data: bytes, max_rows: int) -> tuple[list[str], list[tuple[int, list[str]]], list[RowProblem]]:
    """(header, [(line, cells)], problems) with lines as a spreadsheet counts them."""
    text, problem = _text(data)
    if text is None:
        return [], [], [problem] if problem else []
    reader = csv.reader(io.StringIO(text, newline=""), _dialect(text))
    header: list[str] = []
    rows: list[tuple[int, list[str]]] = []
    try:
        for cells in reader:
            if not header:
                if any(c.strip() for c in cells):
                    header = [c.strip().lower() for c in cells]
                continue
            if not any(c.strip() for c in cells):
                continue  # blank lines are fine
            rows.append((reader.line_num, cells))
            if len(rows) > max_rows:
                raise CSVTooLarge(f"more than {max_rows} rows; split the file and upload the parts one by one")
    except csv.Error as exc:
        return header, rows, [RowProblem(reader.line_num, "", f"the CSV cannot be read here ({exc}); check quoting")]
    if not header:
        return [], [], [RowProblem(1, "", "the file is empty; the first line names the columns (number,name,...)")]
    return header, rows, []


def _header_problems(header: list[str], allow_variables: bool) -> list[RowProblem]:
    most = len(KNOWN_COLUMNS) + MAX_VARIABLES
    if len(header) > most:  # one problem, not one per column of a runaway header
        return [
            RowProblem(
                1,
                "",
                f"{len(header)} columns; at most {most}: number, name, language, timezone and "
                f"up to {MAX_VARIABLES} variables",
            )
        ]
    problems = []
    if "number" not in header:
        problems.append(RowProblem(1, "", "no `number` column; the first line names the columns, e.g. number,name"))
    seen: set[str] = set()
    for name in header:
        if name in seen:
            problems.append(RowProblem(1, name[:40], f"the column {name[:40]!r} appears twice; keep one"))
        seen.add(name)
        if name in KNOWN_COLUMNS or (not allow_variables and name == "reason"):
            continue
        if not allow_variables:
            problems.append(
                RowProblem(1, name[:40], f"unknown column {name[:40]!r}; a do-not-call list has number,reason")
            )
        elif not re.fullmatch(validate.VARIABLE_NAME_PATTERN, name) or name.upper().startswith("IVR_"):
            problems.append(
                RowProblem(
                    1, name[:40], f"{name[:40]!r} cannot be a variable name; use a letter, then letters, digits, _"
                )
            )
    if allow_variables and len([h for h in header if h not in KNOWN_COLUMNS]) > MAX_VARIABLES:
        problems.append(RowProblem(1, "", f"at most {MAX_VARIABLES} variable columns; drop the ones no flow uses"))
    return problems


def _table(
    data: bytes, max_rows: int, *, allow_variables: bool
) -> tuple[list[str], list[tuple[int, list[str]]], list[RowProblem]]:
    """The header and rows of an upload and the problems found so far; no rows when the header itself is wrong."""
    header, rows, problems = _rows(data, max_rows)
    if not header:
        return header, [], problems
    problems = _header_problems(header, allow_variables=allow_variables) + problems
    if any(p.line == 1 for p in problems):
        return header, [], problems
    return header, rows, problems


def _values(
    header: list[str], rows: list[tuple[int, list[str]]], problems: list[RowProblem]
) -> Iterator[tuple[int, dict[str, str]]]:
    """Each row as column -> cell (stripped), with its line; a row of another length is a problem (appended in
    line order, between the problems the caller finds in the rows before and after it)."""
    for line, cells in rows:
        if len(cells) != len(header):
            problems.append(
                RowProblem(line, "", f"{len(cells)} cells for {len(header)} columns; check the separators and quotes")
            )
            continue
        yield line, {name: cell.strip() for name, cell in zip(header, cells, strict=True)}


def parse_contacts(data: bytes, *, number_pattern: re.Pattern[str], max_rows: int) -> Parsed:
    """Every row checked; a number that appears twice is reported on its second line. Raises CSVTooLarge."""
    header, rows, problems = _table(data, max_rows, allow_variables=True)
    out: list[ContactRow] = []
    first_line: dict[str, int] = {}
    for line, values in _values(header, rows, problems):
        number, problem = check_number(values["number"], number_pattern)
        row_problems = [RowProblem(line, "number", problem)] if problem else []
        if not problem and number in first_line:
            row_problems.append(
                RowProblem(line, "number", f"{number} is also on line {first_line[number]}; keep one of the two")
            )
        name, language, zone = values.get("name", ""), values.get("language", ""), values.get("timezone", "")
        if not _TEXT.fullmatch(name):
            row_problems.append(RowProblem(line, "name", "at most 80 characters without control characters"))
        if language:
            try:
                validate.language(language)
            except CallControlError:
                row_problems.append(RowProblem(line, "language", f"{language[:20]!r}: write a code like en, lt, en_GB"))
        if zone:
            try:
                ZoneInfo(zone)
            except (ZoneInfoNotFoundError, ValueError):
                row_problems.append(
                    RowProblem(
                        line, "timezone", f"unknown time zone {zone[:40]!r}; use an IANA name like Europe/Vilnius"
                    )
                )
        variables = {k: v for k, v in values.items() if k not in KNOWN_COLUMNS}
        for key, value in variables.items():
            try:
                validate.variable_value(value, key)
            except CallControlError as exc:
                row_problems.append(RowProblem(line, key, str(exc)))
        problems += row_problems
        if not row_problems:
            first_line[number] = line
            out.append(ContactRow(line, number, name, language, zone, variables))
    return Parsed(out, problems)


@dataclass
class DncRow:
    line: int
    number: str
    reason: str = ""


def parse_dnc(data: bytes, *, max_rows: int) -> tuple[list[DncRow], list[RowProblem]]:
    """A do-not-call list: `number` and an optional `reason`. Any phone number may be listed (not only those the
    service may dial); duplicates are harmless."""
    header, rows, problems = _table(data, max_rows, allow_variables=False)
    out = []
    for line, values in _values(header, rows, problems):
        number = clean_number(values["number"])
        reason = values.get("reason", "")
        if not re.fullmatch(validate.NUMBER_PATTERN, number):
            problems.append(RowProblem(line, "number", f"{number[:40]!r} is not a phone number; digits, optional +"))
        elif not _TEXT.fullmatch(reason):
            problems.append(RowProblem(line, "reason", "at most 80 characters without control characters"))
        else:
            out.append(DncRow(line, number, reason))
    return out, problems
