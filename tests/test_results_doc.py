"""The figures in the results tables are the benchmark JSON files' figures.

Each table in docs/results.md (and README's headline table) is preceded by
`<!-- checked against benchmarks/<file>.json -->`. Every number in the
table's body, past its first column, must be a value of that file, as
shown: rounded to the digits it is printed with, directly, as a percentage
(a fraction times 100) or in megabytes (bytes / 10^6). A table edited by
hand, or a benchmark re-run without updating the table, fails here.
"""

from __future__ import annotations

import json
import re

import pytest
from helpers import REPO

TAG = re.compile(r"<!-- checked against (benchmarks/[\w.]+\.json) -->")
NUMBER = re.compile(r"(?<![\w.])-?\d[\d,]*(?:\.\d+)?")
SCALES = (1, 100, 1e-6, 1e-9)  # as is, percent, millions, billions (GFLOPs)


def leaves(value):
    """Every number in a JSON document."""
    if isinstance(value, bool):
        return
    if isinstance(value, (int, float)):
        yield float(value)
    elif isinstance(value, dict):
        for v in value.values():
            yield from leaves(v)
    elif isinstance(value, list):
        for v in value:
            yield from leaves(v)


def tables(path):
    """(line, source JSON, [body rows' cells]) of each tagged table in `path`."""
    lines = path.read_text(encoding="utf-8").split("\n")
    found = []
    for i, line in enumerate(lines):
        tag = TAG.fullmatch(line.strip())
        if not tag:
            continue
        rows = []
        j = i + 1
        while j < len(lines) and lines[j].startswith("|"):
            rows.append([c.strip() for c in lines[j].strip("|").split("|")])
            j += 1
        assert len(rows) > 2, f"{path.name}:{i + 1}: the tag is not followed by a table"
        found.append((i + 1, tag.group(1), rows[2:]))
    return found


def shown(number: str, values: list[float]) -> bool:
    digits = len(number.split(".")[1]) if "." in number else 0
    target = float(number.replace(",", ""))
    half = 0.5 * 10**-digits + 1e-9  # half a unit of the last digit shown
    return any(abs(v * k - target) <= half for v in values for k in SCALES)


def unmatched(path):
    problems = []
    for line, source, rows in tables(path):
        values = list(leaves(json.loads((REPO / source).read_text())))
        for row in rows:
            for cell in row[1:]:
                for number in NUMBER.findall(cell.replace("**", "")):
                    if not shown(number, values):
                        problems.append(
                            f"{path.name}:{line}: {number!r} ({cell!r}) not in {source}"
                        )
    return problems


@pytest.mark.parametrize("doc", ["docs/results.md", "README.md"])
def test_tables_show_the_benchmark_figures(doc):
    path = REPO / doc
    assert tables(path), f"{doc} has no table checked against a benchmark file"
    assert unmatched(path) == []


def test_a_figure_edited_by_hand_is_caught(tmp_path):
    doc = tmp_path / "results.md"
    text = (REPO / "docs" / "results.md").read_text(encoding="utf-8")
    line, source, rows = tables(REPO / "docs" / "results.md")[0]
    cell = next(c for c in rows[0][1:] if NUMBER.search(c))
    number = NUMBER.search(cell.replace("**", "")).group()
    bumped = cell.replace(number, number + "1", 1)
    doc.write_text(text.replace(cell, bumped, 1), encoding="utf-8")
    assert any(repr(number + "1") in p for p in unmatched(doc))
