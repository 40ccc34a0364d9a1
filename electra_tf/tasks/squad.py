"""SQuAD decoding and scoring: logits -> answer text (n-best, max answer length,
the 2.0 no-answer threshold) with `official.nlp.data.squad_lib`, then EM/F1 with
the official evaluation scripts shipped in `official.nlp.tools`.
"""

from __future__ import annotations

import collections
import json
import os
from typing import Any

import numpy as np

RawResult = collections.namedtuple("RawResult", ["unique_id", "start_logits", "end_logits"])


class EvalFeature:
    """The fields of squad_lib.InputFeatures that decoding reads."""

    def __init__(self, record: dict[str, Any]):
        self.unique_id = record["unique_id"]
        self.example_index = record["example_index"]
        self.doc_span_index = record["doc_span_index"]
        self.tokens = record["tokens"]
        # JSON object keys are strings; squad_lib looks positions up as ints.
        self.token_to_orig_map = {int(k): v for k, v in record["token_to_orig_map"].items()}
        self.token_is_max_context = {int(k): v for k, v in record["token_is_max_context"].items()}


def load_eval_data(data_dir: str, split: str, version_2: bool):
    """(examples, features, gold dataset) for a split written by build_finetuning_data."""
    from official.nlp.data import squad_lib

    gold_path = os.path.join(data_dir, f"{split}_gold.json")
    examples = squad_lib.read_squad_examples(gold_path, False, version_2)
    with open(os.path.join(data_dir, f"{split}_eval.json")) as f:
        features = [EvalFeature(r) for r in json.load(f)["features"]]
    with open(gold_path) as f:
        gold = json.load(f)["data"]
    return examples, features, gold


def decode(
    examples,
    features,
    unique_ids,
    start_logits,
    end_logits,
    null_logits=None,
    n_best_size: int = 20,
    max_answer_length: int = 30,
    lower_case: bool = True,
    version_2: bool = False,
    null_score_diff_threshold: float = 0.0,
) -> tuple[dict[str, str], dict[str, float]]:
    """Answer text per question id, and (2.0) the no-answer score margins.

    For SQuAD 2.0, squad_lib scores "no answer" as start_logits[0] +
    end_logits[0] of a feature. With the answerability classifier, the
    feature's null score is its `null_logit` instead (the ELECTRA reference's
    choice): put it at [CLS], which can never start a real answer, so the rest
    of squad_lib's decoding is unchanged. "" is predicted when the best null
    score minus the best span score exceeds `null_score_diff_threshold`.
    """
    from official.nlp.data import squad_lib

    results = []
    for i, unique_id in enumerate(np.asarray(unique_ids)):
        start = np.asarray(start_logits[i], np.float64).copy()
        end = np.asarray(end_logits[i], np.float64).copy()
        if version_2 and null_logits is not None:
            start[0], end[0] = float(null_logits[i]), 0.0
        results.append(RawResult(int(unique_id), start.tolist(), end.tolist()))
    predictions, _, score_diffs = squad_lib.postprocess_output(
        examples,
        features,
        results,
        n_best_size,
        max_answer_length,
        lower_case,
        version_2_with_negative=version_2,
        null_score_diff_threshold=null_score_diff_threshold,
    )
    return dict(predictions), dict(score_diffs)


BEAM_OUTPUTS = ("start_top_log_probs", "start_top_index", "end_top_log_probs", "end_top_index")


def decode_joint(
    examples,
    features,
    unique_ids,
    beams: dict[str, np.ndarray],
    null_logits=None,
    n_best_size: int = 20,
    max_answer_length: int = 30,
    lower_case: bool = True,
    version_2: bool = False,
    null_score_diff_threshold: float = 0.0,
) -> tuple[dict[str, str], dict[str, float]]:
    """Answer text per question id from the joint head's beams, as the reference
    decodes them (google-research/electra `finetune/qa/qa_metrics.py`).

    `beams` holds `BEAM_OUTPUTS` per feature: the top starts [F, K] and, for
    each, the top ends [F, K, K], as log-probabilities. A candidate is
    (start i, end j) scored start_log_prob[i] + end_log_prob[i, j]; it must lie
    in the passage (token_to_orig_map), not start at [CLS], start where the
    window has maximal context, end at or after the start, and span at most
    `max_answer_length` pieces. The best `n_best_size` distinct texts are kept.

    SQuAD 2.0: the example's null score is the smallest answerability logit
    over its windows (the classifier predicts "unanswerable"); "" is predicted
    when it exceeds `null_score_diff_threshold`. Returns the predictions and
    those null scores.
    """
    from official.nlp.data import squad_lib

    row_of = {int(u): i for i, u in enumerate(np.asarray(unique_ids))}
    by_example = collections.defaultdict(list)
    for feature in features:
        by_example[feature.example_index].append(feature)
    predictions, null_scores = {}, {}
    for example_index, example in enumerate(examples):
        candidates, score_null = [], None
        for feature in by_example[example_index]:
            row = row_of.get(int(feature.unique_id))
            if row is None:
                continue
            if version_2 and null_logits is not None:
                score = float(null_logits[row])
                score_null = score if score_null is None else min(score_null, score)
            starts = beams["start_top_index"][row]
            for i, start in enumerate(int(s) for s in starts):
                for j, end in enumerate(int(e) for e in beams["end_top_index"][row][i]):
                    if start == 0 or start >= len(feature.tokens) or end >= len(feature.tokens):
                        continue
                    if start not in feature.token_to_orig_map:
                        continue
                    if end not in feature.token_to_orig_map:
                        continue
                    if not feature.token_is_max_context.get(start, False):
                        continue
                    if end < start or end - start + 1 > max_answer_length:
                        continue
                    score = float(beams["start_top_log_probs"][row][i]) + float(
                        beams["end_top_log_probs"][row][i][j]
                    )
                    candidates.append((score, feature, start, end))
        candidates.sort(key=lambda c: c[0], reverse=True)
        texts = []
        for _, feature, start, end in candidates:
            if len(texts) >= n_best_size:
                break
            text = _final_text(squad_lib, example, feature, start, end, lower_case)
            if text not in texts:
                texts.append(text)
        best = texts[0] if texts else ""
        if version_2:
            null = float(score_null) if score_null is not None else float("-inf")
            null_scores[example.qas_id] = null
            if null > null_score_diff_threshold:
                best = ""
        predictions[example.qas_id] = best
    return predictions, null_scores


def _final_text(squad_lib, example, feature, start: int, end: int, lower_case: bool) -> str:
    """The original passage text of word-pieces start..end (squad_lib's rules)."""
    pieces = " ".join(feature.tokens[start : end + 1]).replace(" ##", "").replace("##", "")
    pieces = " ".join(pieces.strip().split())
    first, last = feature.token_to_orig_map[start], feature.token_to_orig_map[end]
    original = " ".join(example.doc_tokens[first : last + 1])
    return squad_lib.get_final_text(pieces, original, lower_case)


def evaluate(gold_dataset, predictions: dict[str, str], version_2: bool) -> dict[str, float]:
    """The official SQuAD script's EM and F1 (percent)."""
    if version_2:
        from official.nlp.tools import squad_evaluate_v2_0

        scores = squad_evaluate_v2_0.evaluate(gold_dataset, predictions)
        return {"exact_match": scores["exact"], "f1": scores["f1"]}
    from official.nlp.tools import squad_evaluate_v1_1

    scores = squad_evaluate_v1_1.evaluate(gold_dataset, predictions)  # fractions
    return {"exact_match": 100.0 * scores["exact_match"], "f1": 100.0 * scores["final_f1"]}
