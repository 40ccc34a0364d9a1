"""Fine-tuning data prep: GLUE layouts, user tables, CoNLL alignment, SQuAD, bad input."""

from __future__ import annotations

import io
import json
import shutil

import numpy as np
import pytest

from data_prep import finetune_readers as readers
from data_prep.build_finetuning_data import Settings, build
from electra_tf.finetuning.data import finetune_dataset
from electra_tf.tasks.info import IGNORE, load_info


def _write(path, text):
    path.write_text(text, encoding="utf-8")
    return str(path)


def _build(tmp_path, vocab_path, task, input_dir, **kwargs):
    out = tmp_path / f"out-{task}"
    settings = Settings(task, str(input_dir), str(out), vocab_path, **kwargs)
    return build(settings, stream=io.StringIO()), str(out)


def _first_batch(out, info, split="dev", size=64):
    features, labels = next(iter(finetune_dataset(out, info, split, size, training=False)))
    return {k: v.numpy() for k, v in features.items()}, {k: v.numpy() for k, v in labels.items()}


def test_sst2_like_end_to_end(tmp_path, shared_data, vocab_path):
    info, out = _build(tmp_path, vocab_path, "sst-2", shared_data / "sst2_like", max_seq_length=64)
    assert info["kind"] == "classification" and info["labels"] == ["0", "1"]
    assert info["splits"]["train"]["examples"] == 8456 and info["splits"]["dev"]["examples"] == 1056
    assert load_info(out)["vocab_sha256"] == info["vocab_sha256"]
    features, labels = _first_batch(out, info)
    with open(shared_data / "sst2_like" / "dev.tsv", encoding="utf-8") as f:
        rows = [line.rstrip("\n").split("\t") for line in f][1:65]
    assert labels["label_ids"].tolist() == [int(r[1]) for r in rows]
    from electra_tf.tokenizer import WordPieceTokenizer

    expected = WordPieceTokenizer(vocab_path).encode(rows[0][0], max_length=64)
    assert features["input_ids"][0].tolist() == expected["input_ids"]


@pytest.mark.parametrize(
    "task,header,row,expected",
    [
        ("cola", None, "gj04\t1\t\tThe book was read.", ("The book was read.", None, "1")),
        (
            "mrpc",
            "Quality\t#1 ID\t#2 ID\t#1 String\t#2 String",
            "1\t1\t2\tHe left.\tHe went away.",
            ("He left.", "He went away.", "1"),
        ),
        (
            "sts-b",
            "index\tgenre\tfilename\tyear\told_index\tsource1\tsource2\tsentence1\tsentence2\tscore",
            "0\tmain\tf\t2012\t1\tnone\tnone\tA plane.\tAn airplane.\t5.000",
            ("A plane.", "An airplane.", "5.000"),
        ),
        (
            "mnli",
            "\t".join(f"c{i}" for i in range(12)),
            "\t".join(["x"] * 8 + ["Premise.", "Hypothesis.", "x", "neutral"]),
            ("Premise.", "Hypothesis.", "neutral"),
        ),
        (
            "rte",
            "index\tsentence1\tsentence2\tlabel",
            "0\tA b.\tC d.\tentailment",
            ("A b.", "C d.", "entailment"),
        ),
    ],
)
def test_glue_layouts(tmp_path, task, header, row, expected):
    text = (header + "\n" if header else "") + row + "\n"
    path = _write(tmp_path / "train.tsv", text)
    (example,) = readers.read_glue(task, path)
    assert (example.text_a, example.text_b, example.label) == expected
    assert example.source == f"{path}:{2 if header else 1}"


def test_glue_regression_and_mnli_mismatched(tmp_path, vocab_path):
    header = "\t".join(f"c{i}" for i in range(12))
    row = "\t".join(["x"] * 8 + ["A man eats.", "Someone eats.", "x", "entailment"])
    for name in ("train.tsv", "dev_matched.tsv", "dev_mismatched.tsv"):
        _write(tmp_path / name, f"{header}\n{row}\n{row}\n")
    info, out = _build(tmp_path, vocab_path, "mnli", tmp_path, max_seq_length=32)
    assert set(info["splits"]) == {"train", "dev", "dev_mismatched"}
    assert info["labels"] == ["contradiction", "entailment", "neutral"]
    _, labels = _first_batch(out, info, "dev_mismatched")
    assert labels["label_ids"].tolist() == [1, 1]

    sts = tmp_path / "sts"
    sts.mkdir()
    header = "\t".join(f"c{i}" for i in range(10))
    for name, score in (("train.tsv", "3.5"), ("dev.tsv", "1.25")):
        _write(sts / name, f"{header}\n" + "\t".join(["x"] * 7 + ["A.", "B.", score]) + "\n")
    info, out = _build(tmp_path, vocab_path, "sts-b", sts, max_seq_length=16)
    assert info["kind"] == "regression" and info["main_metric"] == "spearman"
    _, labels = _first_batch(out, info)
    assert labels["label"].tolist() == [1.25]


def test_user_table_with_named_columns(tmp_path, vocab_path):
    _write(tmp_path / "train.csv", 'id,review,stars\n1,"Great, really",pos\n2,Awful,neg\n')
    _write(tmp_path / "dev.csv", "id,review,stars\n3,Fine,pos\n")
    info, out = _build(
        tmp_path,
        vocab_path,
        "tsv",
        tmp_path,
        train_file="train.csv",
        dev_file="dev.csv",
        text_column="review",
        label_column="stars",
        max_seq_length=16,
    )
    assert info["labels"] == ["neg", "pos"] and not info["pair"]
    _, labels = _first_batch(out, info)
    assert labels["label_ids"].tolist() == [1]


def test_conll_labels_first_wordpiece(tmp_path, vocab_path):
    _write(
        tmp_path / "train.conll",
        "-DOCSTART- O\n\nJohn\tB-person\nunaffable\tO\nParis\tB-geo-loc\n\n",
    )
    _write(tmp_path / "dev.conll", "unaffable\tO\nNew\tB-geo-loc\nYork\tI-geo-loc\n")
    info, out = _build(
        tmp_path,
        vocab_path,
        "conll",
        tmp_path,
        labels="O,B-person,B-geo-loc,I-geo-loc",
        max_seq_length=16,
    )
    assert info["kind"] == "tagging"
    features, labels = _first_batch(out, info)
    tags = info["labels"]
    # [CLS] una ##ffa ##ble new york [SEP]: only each word's first piece is labelled.
    row = labels["label_ids"][0]
    assert row[:7].tolist() == [
        IGNORE,
        0,
        IGNORE,
        IGNORE,
        tags.index("B-geo-loc"),
        tags.index("I-geo-loc"),
        IGNORE,
    ]
    assert np.all(row[7:] == IGNORE)
    assert features["input_mask"][0].sum() == 7


def test_squad_fixture_features(tmp_path, shared_data, vocab_path):
    info, out = _build(
        tmp_path,
        vocab_path,
        "squad_v1",
        shared_data / "squad",
        train_file="tiny_squad_v1.json",
        dev_file="tiny_squad_v1.json",
        max_seq_length=128,
        doc_stride=48,
    )
    assert info["kind"] == "span" and info["splits"]["dev"]["examples"] == 5
    assert info["splits"]["dev"]["features"] >= 5  # long passages make several windows
    features, labels = _first_batch(out, info, "train")
    ids = features["input_ids"]
    starts, ends = labels["start_positions"], labels["end_positions"]
    from electra_tf.tokenizer import WordPieceTokenizer

    vocab = WordPieceTokenizer(vocab_path).vocab.tokens
    answers = [
        " ".join(vocab[t] for t in ids[i, s : e + 1])
        for i, (s, e) in enumerate(zip(starts, ends))
        if s
    ]
    assert "saint bern ##ade ##tte so ##ub ##iro ##us" in answers
    with open(f"{out}/dev_eval.json") as f:
        assert len(json.load(f)["features"]) == info["splits"]["dev"]["features"]


# ---- bad input: each error names the file and the line (or JSON path) ----


def test_missing_column_names_file_and_line(tmp_path, vocab_path):
    _write(tmp_path / "train.tsv", "sentence\tlabel\ngood\t1\nbad\n")
    _write(tmp_path / "dev.tsv", "sentence\tlabel\nok\t1\n")
    with pytest.raises(ValueError, match=r"train\.tsv:3: no column 1 for the label"):
        _build(tmp_path, vocab_path, "sst-2", tmp_path)
    with pytest.raises(ValueError, match=r"train\.tsv:1: missing column\(s\) 'text'"):
        _build(tmp_path, vocab_path, "tsv", tmp_path, text_column="text")


def test_unknown_dev_label(tmp_path, vocab_path):
    _write(tmp_path / "train.tsv", "sentence\tlabel\ngood\tpos\nbad\tneg\n")
    _write(tmp_path / "dev.tsv", "sentence\tlabel\nok\tpos\nmeh\tneutral\n")
    with pytest.raises(ValueError, match=r"dev\.tsv:3: unknown label 'neutral'"):
        _build(tmp_path, vocab_path, "tsv", tmp_path)
    assert not (tmp_path / "out-tsv" / "finetune_info.json").exists()


def test_malformed_squad_json(tmp_path, shared_data, vocab_path):
    _write(tmp_path / "train.json", '{"data": [\n{"paragraphs": [}\n]}')
    with pytest.raises(ValueError, match=r"train\.json:2:\d+: not valid JSON"):
        readers.check_squad_json(str(tmp_path / "train.json"), False)
    data = json.loads((shared_data / "squad" / "tiny_squad_v1.json").read_text())
    del data["data"][0]["paragraphs"][0]["qas"][1]["question"]
    _write(tmp_path / "bad.json", json.dumps(data))
    with pytest.raises(
        ValueError, match=r"bad\.json: data\[0\]\.paragraphs\[0\]\.qas\[1\]: missing 'question'"
    ):
        readers.check_squad_json(str(tmp_path / "bad.json"), False)
    data = json.loads((shared_data / "squad" / "tiny_squad_v1.json").read_text())
    data["data"][0]["paragraphs"][0]["qas"][0]["answers"][0]["answer_start"] += 3
    _write(tmp_path / "shifted.json", json.dumps(data))
    with pytest.raises(ValueError, match=r"answers\[0\]: text .* is not at answer_start"):
        readers.check_squad_json(str(tmp_path / "shifted.json"), False)
    with pytest.raises(ValueError, match="missing 'is_impossible'"):
        readers.check_squad_json(str(shared_data / "squad" / "tiny_squad_v1.json"), True)


def test_conll_line_without_tag(tmp_path, vocab_path):
    _write(tmp_path / "train.conll", "John\tB-person\n\nParis\nis\tO\n")
    with pytest.raises(
        ValueError, match=r"train\.conll:3: expected 'token<TAB>tag', got 'Paris' \(no tag\)"
    ):
        readers.read_conll(str(tmp_path / "train.conll"))
    _write(tmp_path / "train.conll", "John\tB-person\nsaid\tO\n")
    _write(tmp_path / "dev.conll", "Hi\tO\n\nin\tO\nParis\tB-city\n")
    with pytest.raises(ValueError, match=r"dev\.conll:4: unknown tag 'B-city'"):
        _build(tmp_path, vocab_path, "conll", tmp_path)


def test_missing_input_file(tmp_path, vocab_path):
    with pytest.raises(ValueError, match=r"train\.tsv does not exist"):
        _build(tmp_path, vocab_path, "sst-2", tmp_path)
    shutil.rmtree(tmp_path)


# --- hostile tables ------------------------------------------------------------------


def _table(tmp_path, name, data: bytes):
    path = tmp_path / name
    path.write_bytes(data)
    return str(path)


def test_a_bom_and_crlf_are_read_as_plain_text(tmp_path):
    path = _table(tmp_path, "t.csv", "\ufefftext,label\r\ngood one,pos\r\nbad,neg\r\n".encode())
    rows = readers.read_table(path, "text", None, "label")
    assert [(r.text_a, r.label) for r in rows] == [("good one", "pos"), ("bad", "neg")]
    tsv = _table(tmp_path, "g.tsv", b"\xef\xbb\xbfsentence\tlabel\r\nfine\t1\r\n")
    assert [(r.text_a, r.label) for r in readers.read_glue("sst-2", tsv)] == [("fine", "1")]


def test_csv_cells_with_embedded_newlines_keep_their_starting_line(tmp_path):
    path = _table(tmp_path, "t.csv", b'text,label\n"two\nlines, one cell",pos\nnext,neg\n')
    rows = readers.read_table(path, "text", None, "label")
    assert rows[0].text_a == "two\nlines, one cell" and rows[0].source.endswith(":2")
    assert rows[1].text_a == "next" and rows[1].source.endswith(":4")


def test_quotes_are_text_in_a_tsv_and_a_stray_one_in_a_csv_is_named(tmp_path):
    # TSV has no quoting (BERT, GLUE): quotes are kept, no row is merged into another.
    tsv = _table(tmp_path, "t.tsv", b'text\tlabel\n"Collateral Damage" goes\t0\n"open\t1\nok\t1\n')
    rows = readers.read_table(tsv, "text", None, "label")
    assert [(r.text_a, r.label) for r in rows] == [
        ('"Collateral Damage" goes', "0"),
        ('"open', "1"),
        ("ok", "1"),
    ]
    # CSV quoting is strict: an unmatched quote would swallow the next rows.
    csv_file = _table(tmp_path, "c.csv", b'text,label\nok,1\n"great movie,1\nbad,0\nfine,1\n')
    with pytest.raises(ValueError, match=r"c\.csv:3: .*stray quote"):
        readers.read_table(csv_file, "text", None, "label")
    inner = _table(tmp_path, "i.csv", b'text,label\n"say ""hi"" now",1\n')
    assert readers.read_table(inner, "text", None, "label")[0].text_a == 'say "hi" now'


def test_a_row_without_its_label_is_named(tmp_path):
    short = _table(tmp_path, "s.csv", b"text,label\ngood,pos\nno label here\n")
    with pytest.raises(ValueError, match=r"s\.csv:3: 1 columns but the header has 2"):
        readers.read_table(short, "text", None, "label")
    empty = _table(tmp_path, "e.csv", b"text,label\ngood,pos\nno label here,\n")
    with pytest.raises(ValueError, match=r"e\.csv:3: the label column 'label' is empty"):
        readers.read_table(empty, "text", None, "label")


def test_a_one_megabyte_cell_is_read_and_truncated(tmp_path, vocab_path):
    big = " ".join(["word"] * 200_000)  # 1 MB, past the csv module's default field limit
    _write(tmp_path / "train.tsv", f"text\tlabel\n{big}\tpos\nshort\tneg\n")
    _write(tmp_path / "dev.tsv", "text\tlabel\nfine\tpos\n")
    info, out = _build(
        tmp_path,
        vocab_path,
        "tsv",
        tmp_path,
        train_file="train.tsv",
        dev_file="dev.tsv",
        text_column="text",
        label_column="label",
        max_seq_length=16,
    )
    features, _ = _first_batch(out, info, split="train")
    assert features["input_mask"].sum(axis=1).max() == 16  # cut to max_seq_length
    assert info["splits"]["train"]["features"] == 2


def _sentences(out, info, split):
    """The token ids of every example of a split, as tuples (order-free comparisons)."""
    data = finetune_dataset(out, info, split, 10_000, training=False)
    return {tuple(row) for features, _ in data for row in features["input_ids"].numpy()}


def test_validation_is_carved_from_train_and_smaller_sets_nest(tmp_path, shared_data, vocab_path):
    sst = shared_data / "sst2_like"
    full_info, full = _build(tmp_path, vocab_path, "sst-2", sst, max_seq_length=64)
    carved = {}
    for count in (100, 300):
        out = tmp_path / f"carved-{count}"
        info = build(
            Settings(
                "sst-2",
                str(sst),
                str(out),
                vocab_path,
                max_seq_length=64,
                validation_size=200,
                max_train_examples=count,
            ),  # fmt: skip
            stream=io.StringIO(),
        )
        assert info["splits"]["train"]["examples"] == count
        assert info["splits"]["validation"]["examples"] == 200
        assert info["carved_from_train"]["max_train_examples"] == count
        carved[count] = {s: _sentences(str(out), info, s) for s in ("train", "validation", "dev")}
    everything = _sentences(full, full_info, "train")
    for sets in carved.values():
        assert not sets["train"] & sets["validation"]  # no example in both
        assert sets["validation"] <= everything and sets["train"] <= everything
        assert sets["dev"] == _sentences(full, full_info, "dev")  # dev untouched
    assert carved[100]["validation"] == carved[300]["validation"]
    assert carved[100]["train"] <= carved[300]["train"]  # a smaller set is a subset


def test_carving_keeps_the_whole_label_set_and_names_the_flags(tmp_path, vocab_path):
    _write(tmp_path / "train.conll", "a\tB-x\n\nb\tO\n\nc\tB-y\n\nd\tO\n\n")
    _write(tmp_path / "dev.conll", "a\tB-y\n")
    info, _ = _build(tmp_path, vocab_path, "conll", tmp_path, validation_size=1,
                     max_train_examples=1)  # fmt: skip
    assert sorted(info["labels"]) == ["B-x", "B-y", "O"]  # of the whole file, not the one kept
    assert info["splits"]["validation"]["examples"] == 1
    with pytest.raises(
        ValueError, match="fewer than --validation_size=3 plus --max_train_examples=2"
    ):
        _build(tmp_path, vocab_path, "conll", tmp_path, validation_size=3, max_train_examples=2)
    with pytest.raises(ValueError, match="--validation_size/--max_train_examples: not for SQuAD"):
        _build(tmp_path, vocab_path, "squad_v1", tmp_path, validation_size=3)
