"""SQuAD decoding (squad_lib n-best + our null score) and the official EM/F1, on hand-made logits."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest

from data_prep.build_finetuning_data import Settings, build
from electra_tf.finetuning import squad

NEG = -20.0


@pytest.fixture(scope="module")
def squad_dir(shared_data, vocab_path, tmp_path_factory):
    out = tmp_path_factory.mktemp("squad")
    build(
        Settings(
            "squad_v1",
            str(shared_data / "squad"),
            str(out),
            vocab_path,
            max_seq_length=128,
            doc_stride=64,
            train_file="tiny_squad_v1.json",
            dev_file="tiny_squad_v1.json",
        ),
        stream=io.StringIO(),
    )
    return str(out)


def _gold_logits(examples, features, vocab_path, shift=0):
    """Logits peaked on each question's first reference answer (its word-piece span)."""
    from electra_tf.tokenizer import WordPieceTokenizer

    tokenizer = WordPieceTokenizer(vocab_path)
    starts, ends = [], []
    for feature in features:
        example = examples[feature.example_index]
        start = np.full(len(feature.tokens), NEG)
        end = np.full(len(feature.tokens), NEG)
        answer = tokenizer.tokenize(example.orig_answer_text)
        for i in range(len(feature.tokens) - len(answer) + 1):
            if feature.tokens[i : i + len(answer)] == answer and feature.token_is_max_context.get(
                i
            ):
                start[i + shift], end[i + len(answer) - 1 + shift] = 10.0, 10.0
                break
        starts.append(start)
        ends.append(end)
    return starts, ends


def test_decode_gold_logits_scores_100(squad_dir, vocab_path):
    from official.nlp.data import squad_lib

    examples, features, gold = squad.load_eval_data(squad_dir, "dev", version_2=False)
    # orig_answer_text is only filled in training mode; read it from the gold file
    answers = {
        qa["id"]: qa["answers"][0]["text"] for a in gold for p in a["paragraphs"] for qa in p["qas"]
    }
    for example in examples:
        example.orig_answer_text = answers[example.qas_id]
    starts, ends = _gold_logits(examples, features, vocab_path)
    unique_ids = [f.unique_id for f in features]
    predictions, _ = squad.decode(examples, features, unique_ids, starts, ends)
    assert predictions == answers
    assert squad.evaluate(gold, predictions, version_2=False) == {"exact_match": 100.0, "f1": 100.0}
    assert squad_lib is not None

    # max_answer_length below the gold span lengths drops those spans
    short, _ = squad.decode(examples, features, unique_ids, starts, ends, max_answer_length=1)
    assert all(len(short[q].split()) <= 1 for q in short)
    scores = squad.evaluate(gold, short, version_2=False)
    assert scores["exact_match"] < 100.0


def test_official_metric_partial_credit(squad_dir):
    _, _, gold = squad.load_eval_data(squad_dir, "dev", version_2=False)
    ids = [qa["id"] for a in gold for p in a["paragraphs"] for qa in p["qas"]]
    first = gold[0]["paragraphs"][0]["qas"][0]["answers"][0]["text"]  # "Saint Bernadette Soubirous"
    predictions = {qid: "" for qid in ids}
    predictions[ids[0]] = "Bernadette Soubirous"  # 2 of 3 tokens, precision 1
    scores = squad.evaluate(gold, predictions, version_2=False)
    assert first == "Saint Bernadette Soubirous"
    assert scores["exact_match"] == 0.0
    assert scores["f1"] == pytest.approx(100 * (2 * 1 * (2 / 3) / (1 + 2 / 3)) / len(ids))


def test_v2_null_logit_threshold():
    from official.nlp.data import squad_lib

    example = squad_lib.SquadExample("q1", "who?", ["Alice", "met", "Bob"])
    tokens = ["[CLS]", "who", "?", "[SEP]", "alice", "met", "bob", "[SEP]"]
    feature = squad.EvalFeature(
        {
            "unique_id": 7,
            "example_index": 0,
            "doc_span_index": 0,
            "tokens": tokens,
            "token_to_orig_map": {"4": 0, "5": 1, "6": 2},
            "token_is_max_context": {"4": True, "5": True, "6": True},
        }
    )
    start = np.full(8, NEG)
    end = np.full(8, NEG)
    start[6], end[6] = 3.0, 3.0  # best span "Bob" scores 6
    args = ([example], [feature], [7], [start], [end])
    answer, diffs = squad.decode(*args, null_logits=[10.0], version_2=True)
    assert answer == {"q1": ""} and diffs["q1"] == pytest.approx(4.0)
    answer, _ = squad.decode(*args, null_logits=[10.0], version_2=True, null_score_diff_threshold=5)
    assert answer == {"q1": "Bob"}
    answer, _ = squad.decode(*args, null_logits=[1.0], version_2=True)
    assert answer == {"q1": "Bob"}
    gold = [{"paragraphs": [{"qas": [{"id": "q1", "answers": []}]}]}]
    assert squad.evaluate(gold, {"q1": ""}, version_2=True)["exact_match"] == 100.0
    assert json.dumps(answer)
