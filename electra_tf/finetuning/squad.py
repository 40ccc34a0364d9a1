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


def evaluate(gold_dataset, predictions: dict[str, str], version_2: bool) -> dict[str, float]:
    """The official SQuAD script's EM and F1 (percent)."""
    if version_2:
        from official.nlp.tools import squad_evaluate_v2_0

        scores = squad_evaluate_v2_0.evaluate(gold_dataset, predictions)
        return {"exact_match": scores["exact"], "f1": scores["f1"]}
    from official.nlp.tools import squad_evaluate_v1_1

    scores = squad_evaluate_v1_1.evaluate(gold_dataset, predictions)  # fractions
    return {"exact_match": 100.0 * scores["exact_match"], "f1": 100.0 * scores["final_f1"]}
