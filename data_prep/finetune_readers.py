"""Readers for fine-tuning inputs: GLUE TSVs, a user's TSV/CSV, CoNLL tagging, SQuAD JSON.

Every error names the file and line (or JSON path) so a bad row can be fixed.
GLUE files are read here rather than with `official.nlp.data.classifier_data_lib`:
its GLUE processors now fetch the data through TFDS/GCS instead of reading the
standard TSVs, which does not work offline. The column layout below is the
one BERT's run_classifier.py reads.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import os


@dataclasses.dataclass(frozen=True)
class TextExample:
    """One single-sentence or pair example; `source` is "file:line"."""

    source: str
    text_a: str
    text_b: str | None
    label: str | None


@dataclasses.dataclass(frozen=True)
class GlueTask:
    """Where a GLUE task's columns are (negative = from the end of the row)."""

    labels: tuple[str, ...] | None  # None: regression
    text_a: int
    text_b: int | None
    label: int
    header: bool = True
    dev_files: tuple[str, ...] = ("dev.tsv",)
    main_metric: str = "accuracy"
    # The reference's protocol (google-research/electra configure_finetuning.py):
    # epochs per task, and paraphrase-like tasks trained on both pair orders.
    epochs: float = 3.0
    double_unordered: bool = False


GLUE_TASKS = {
    "cola": GlueTask(("0", "1"), 3, None, 1, header=False, main_metric="mcc"),
    "sst-2": GlueTask(("0", "1"), 0, None, 1),
    "mrpc": GlueTask(("0", "1"), 3, 4, 0, main_metric="f1", double_unordered=True),
    "sts-b": GlueTask(None, 7, 8, 9, main_metric="spearman", epochs=10.0, double_unordered=True),
    "qqp": GlueTask(("0", "1"), 3, 4, 5, main_metric="f1"),
    "mnli": GlueTask(
        ("contradiction", "entailment", "neutral"),
        8,
        9,
        -1,
        dev_files=("dev_matched.tsv", "dev_mismatched.tsv"),
    ),
    "qnli": GlueTask(("entailment", "not_entailment"), 1, 2, -1),
    "rte": GlueTask(("entailment", "not_entailment"), 1, 2, -1, epochs=10.0),
    "wnli": GlueTask(("0", "1"), 1, 2, 3),
}


# A cell may hold a whole document (it is truncated at tokenization); the csv
# module's default limit of 128 KiB would reject it.
_MAX_CELL = 1 << 30


def _open_text(path: str):
    try:
        # utf-8-sig: a byte-order mark (Excel's "CSV UTF-8") is not part of the first cell.
        return open(path, encoding="utf-8-sig", newline="")
    except OSError as e:
        raise ValueError(f"Cannot read {path}: {e.strerror}") from e


def _rows(path: str, delimiter: str, quoting: int):
    """Yields (line number where the row starts, row).

    Quoted cells may span lines (CSV's embedded newlines); CRLF and LF both
    end a row. A bad encoding or an unmatched quote is reported with the line
    its row starts on.
    """
    csv.field_size_limit(_MAX_CELL)
    with _open_text(path) as f:
        reader = csv.reader(f, delimiter=delimiter, quoting=quoting, strict=True)
        start = 1
        try:
            for row in reader:
                yield start, row
                start = reader.line_num + 1
        except UnicodeDecodeError as e:
            raise ValueError(
                f"{path}:{reader.line_num + 1}: not valid UTF-8 (byte {e.start})"
            ) from e
        except csv.Error as e:
            raise ValueError(
                f"{path}:{start}: {e} (in the row that starts on line {start}, read up to line "
                f"{reader.line_num}). A double quote at the start of a cell opens a quoted "
                "cell that runs until the next quote: quote the whole cell and double the "
                'quotes inside it ("say ""hi"""), or remove the stray quote.'
            ) from None


def _cell(path: str, line: int, row: list[str], index: int, what: str) -> str:
    if -len(row) <= index < len(row):
        return row[index]
    column = index if index >= 0 else f"{index} (from the end)"
    raise ValueError(f"{path}:{line}: no column {column} for the {what}; the row has {len(row)}")


def read_glue(task: str, path: str) -> list[TextExample]:
    """Reads one split of GLUE task `task` from its standard TSV file."""
    spec = GLUE_TASKS[task]
    examples = []
    for line, row in _rows(path, "\t", csv.QUOTE_NONE):
        if spec.header and line == 1:
            continue
        if not row:
            continue
        examples.append(
            TextExample(
                source=f"{path}:{line}",
                text_a=_cell(path, line, row, spec.text_a, "sentence"),
                text_b=None
                if spec.text_b is None
                else _cell(path, line, row, spec.text_b, "second sentence"),
                label=_cell(path, line, row, spec.label, "label"),
            )
        )
    return examples


def read_table(
    path: str, text_column: str, text_b_column: str | None, label_column: str
) -> list[TextExample]:
    """Reads a user's TSV/CSV (by extension) with a header naming the columns.

    A CSV uses CSV's quoting (cells in double quotes may hold commas, newlines
    and doubled quotes); a TSV has none, as BERT's `_read_tsv` and GLUE: a
    double quote is text (`"Collateral Damage" goes by the numbers`).
    """
    is_csv = path.lower().endswith(".csv")
    rows = _rows(path, "," if is_csv else "\t", csv.QUOTE_MINIMAL if is_csv else csv.QUOTE_NONE)
    try:
        _, header = next(rows)
    except StopIteration:
        raise ValueError(f"{path}: empty file; expected a header row") from None
    wanted = [c for c in (text_column, text_b_column, label_column) if c]
    missing = [c for c in wanted if c not in header]
    if missing:
        raise ValueError(
            f"{path}:1: missing column(s) {', '.join(map(repr, missing))}; the header has "
            f"{', '.join(map(repr, header))}"
        )
    index = {c: header.index(c) for c in wanted}
    examples = []
    for line, row in rows:
        if not row:
            continue
        if len(row) != len(header):
            raise ValueError(f"{path}:{line}: {len(row)} columns but the header has {len(header)}")
        if not row[index[label_column]].strip():
            raise ValueError(f"{path}:{line}: the label column {label_column!r} is empty")
        examples.append(
            TextExample(
                source=f"{path}:{line}",
                text_a=row[index[text_column]],
                text_b=row[index[text_b_column]] if text_b_column else None,
                label=row[index[label_column]],
            )
        )
    return examples


@dataclasses.dataclass(frozen=True)
class TaggedSentence:
    """One sentence; word i is on line `line + i` of `path`."""

    path: str
    line: int
    words: tuple[str, ...]
    tags: tuple[str, ...]


def read_conll(path: str) -> list[TaggedSentence]:
    """CoNLL: one `token ... tag` per line (tab or space separated; the tag is the
    last column), a blank line between sentences, `-DOCSTART-` lines skipped."""
    sentences, words, tags, start = [], [], [], 1
    with _open_text(path) as f:
        line_number = 0
        try:
            for line_number, line in enumerate(f, 1):
                fields = line.split()
                if not fields:
                    if words:
                        sentences.append(TaggedSentence(path, start, tuple(words), tuple(tags)))
                    words, tags = [], []
                    continue
                if fields[0] == "-DOCSTART-":
                    continue
                if len(fields) < 2:
                    raise ValueError(
                        f"{path}:{line_number}: expected 'token<TAB>tag', got {line.rstrip()!r} "
                        "(no tag)"
                    )
                if not words:
                    start = line_number
                words.append(fields[0])
                tags.append(fields[-1])
        except UnicodeDecodeError as e:
            raise ValueError(f"{path}:{line_number + 1}: not valid UTF-8 (byte {e.start})") from e
    if words:
        sentences.append(TaggedSentence(path, start, tuple(words), tuple(tags)))
    return sentences


def check_squad_json(path: str, version_2: bool) -> dict:
    """Validates a SQuAD file before `squad_lib` reads it; returns the parsed JSON.

    `squad_lib` fails on bad input with a bare KeyError; this names the JSON
    path of the first problem instead.
    """
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except OSError as e:
        raise ValueError(f"Cannot read {path}: {e.strerror}") from e
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}:{e.lineno}:{e.colno}: not valid JSON: {e.msg}") from e
    except UnicodeDecodeError as e:
        raise ValueError(f"{path}: not valid UTF-8 (byte {e.start})") from e

    def need(obj, key, kind, where):
        if not isinstance(obj, dict) or key not in obj:
            raise ValueError(f"{path}: {where}: missing {key!r}")
        if not isinstance(obj[key], kind):
            raise ValueError(f"{path}: {where}.{key}: expected {kind.__name__}")
        return obj[key]

    for a, article in enumerate(need(data, "data", list, "top level")):
        for p, paragraph in enumerate(need(article, "paragraphs", list, f"data[{a}]")):
            where = f"data[{a}].paragraphs[{p}]"
            context = need(paragraph, "context", str, where)
            for q, qa in enumerate(need(paragraph, "qas", list, where)):
                at = f"{where}.qas[{q}]"
                need(qa, "id", str, at)
                need(qa, "question", str, at)
                answers = need(qa, "answers", list, at)
                impossible = version_2 and need(qa, "is_impossible", bool, at)
                if not impossible and not answers:
                    raise ValueError(f"{path}: {at}: no answers and not is_impossible")
                for n, answer in enumerate(answers):
                    text = need(answer, "text", str, f"{at}.answers[{n}]")
                    start = need(answer, "answer_start", int, f"{at}.answers[{n}]")
                    if context[start : start + len(text)] != text:
                        raise ValueError(
                            f"{path}: {at}.answers[{n}]: text {text!r} is not at "
                            f"answer_start={start} of the context"
                        )
    return data


def find_split(input_dir: str, name: str) -> str:
    path = os.path.join(input_dir, name)
    if not os.path.exists(path):
        raise ValueError(f"{path} does not exist (--input_dir={input_dir})")
    return path
