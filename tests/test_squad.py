"""SQuAD decoding (squad_lib n-best + our null score) and the official EM/F1, on hand-made logits."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest

from data_prep.build_finetuning_data import Settings, build
from electra_tf.tasks import squad

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
            doc_stride=48,
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


def _alice_example():
    from official.nlp.data import squad_lib

    example = squad_lib.SquadExample("q1", "who met?", ["Alice", "met", "Bob", "today"])
    feature = squad.EvalFeature(
        {
            "unique_id": 7,
            "example_index": 0,
            "doc_span_index": 0,
            "tokens": [
                "[CLS]",
                "who",
                "met",
                "?",
                "[SEP]",
                "alice",
                "met",
                "bob",
                "today",
                "[SEP]",
            ],
            "token_to_orig_map": {"5": 0, "6": 1, "7": 2, "8": 3},
            "token_is_max_context": {"5": True, "6": True, "7": True, "8": True},
        }
    )
    return example, feature


def test_joint_beam_decoding_by_hand():
    """Beams of 3 starts x 2 ends; worked out by hand:
    start 0 ([CLS], -0.1) + any end            skipped: a start at [CLS] is "no answer"
    start 7 (bob, -0.5) + end 8 (today, -0.1)  = -0.6   <- best with max length 3
    start 7 + end 6 (before its start)          skipped
    start 5 (alice, -1.0) + end 8 (-0.05)       4 pieces: over max length 3
    start 5 + end 5 (alice, -0.2)               = -1.2   <- the only one of length 1
    """
    example, feature = _alice_example()
    beams = {
        "start_top_index": np.array([[0, 7, 5]]),
        "start_top_log_probs": np.array([[-0.1, -0.5, -1.0]]),
        "end_top_index": np.array([[[0, 1], [8, 6], [8, 5]]]),
        "end_top_log_probs": np.array([[[-0.1, -0.2], [-0.1, -0.3], [-0.05, -0.2]]]),
    }
    args = ([example], [feature], [7], beams)
    answer, _ = squad.decode_joint(*args, max_answer_length=3)
    assert answer == {"q1": "Bob today"}
    answer, _ = squad.decode_joint(*args, max_answer_length=1)
    assert answer == {"q1": "Alice"}
    # SQuAD 2.0: the answerability logit decides, against the threshold.
    answer, nulls = squad.decode_joint(*args, null_logits=[0.7], version_2=True)
    assert answer == {"q1": ""} and nulls["q1"] == pytest.approx(0.7)
    answer, _ = squad.decode_joint(
        *args, null_logits=[0.7], version_2=True, null_score_diff_threshold=1.0
    )
    assert answer == {"q1": "Bob today"}


def test_every_passage_token_is_in_some_window(shared_data, vocab_path, tmp_path):
    """Short windows (length 64) over the fixture's passages: the union of the
    windows of each question covers its whole passage."""
    out = tmp_path / "squad"
    build(
        Settings(
            "squad_v1",
            str(shared_data / "squad"),
            str(out),
            vocab_path,
            max_seq_length=64,
            max_query_length=24,
            doc_stride=37,  # the whole window: adjacent, no overlap, no gap
            train_file="tiny_squad_v1.json",
            dev_file="tiny_squad_v1.json",
        ),
        stream=io.StringIO(),
    )
    examples, features, _ = squad.load_eval_data(str(out), "dev", version_2=False)
    covered = {}
    for feature in features:
        covered.setdefault(feature.example_index, set()).update(feature.token_to_orig_map.values())
    assert max(f.doc_span_index for f in features) >= 1  # passages span several windows
    for index, example in enumerate(examples):
        assert covered[index] == set(range(len(example.doc_tokens))), example.qas_id


def test_a_stride_that_leaves_gaps_is_refused(tmp_path):
    with pytest.raises(ValueError, match="--doc_stride=128 is longer than the passage window"):
        Settings("squad_v1", "in", str(tmp_path), "vocab.txt", max_seq_length=128).validate()
    settings = Settings("squad_v2", "in", str(tmp_path), "vocab.txt")
    settings.validate()
    assert settings.max_seq_length == 512 and settings.doc_stride == 128  # the reference's
