"""Fine-tuning metrics on hand-made cases (and scipy/seqeval where they agree by definition)."""

from __future__ import annotations

import numpy as np
import pytest

from electra_tf import metrics


def test_entity_f1_hand_made():
    gold = [["B-PER", "I-PER", "O", "B-LOC"], ["O", "B-ORG", "I-ORG", "I-ORG"]]
    # sentence 1: PER exact (tp), LOC missed; sentence 2: ORG with a wrong end (fp + fn)
    predicted = [["B-PER", "I-PER", "O", "O"], ["O", "B-ORG", "I-ORG", "O"]]
    result = metrics.entity_f1(gold, predicted)
    assert result["entity_precision"] == pytest.approx(1 / 2)
    assert result["entity_recall"] == pytest.approx(1 / 3)
    assert result["entity_f1"] == pytest.approx(2 * (1 / 2) * (1 / 3) / (1 / 2 + 1 / 3))


def test_entity_type_must_match_and_perfect_score():
    gold = [["B-PER", "I-PER"]]
    assert metrics.entity_f1(gold, [["B-LOC", "I-LOC"]])["entity_f1"] == 0.0
    assert metrics.entity_f1(gold, gold)["entity_f1"] == 1.0
    assert metrics.entity_f1([["O", "O"]], [["O", "O"]])["entity_f1"] == 0.0


def test_entities_conlleval_rules():
    # An I- that does not continue its type starts a new entity; a type switch ends one.
    assert metrics.entities(["I-PER", "I-PER", "I-LOC", "O"]) == {("PER", 0, 1), ("LOC", 2, 2)}
    assert metrics.entities(["B-PER", "B-PER"]) == {("PER", 0, 0), ("PER", 1, 1)}
    assert metrics.entities(["S-LOC", "B-PER", "E-PER"]) == {("LOC", 0, 0), ("PER", 1, 2)}


def test_entity_f1_matches_seqeval_default_mode():
    seqeval = pytest.importorskip("seqeval.metrics")
    rng = np.random.default_rng(0)
    tags = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"]
    for _ in range(50):
        gold = [list(rng.choice(tags, rng.integers(1, 10))) for _ in range(4)]
        predicted = [list(rng.choice(tags, len(g))) for g in gold]
        assert metrics.entity_f1(gold, predicted)["entity_f1"] == pytest.approx(
            seqeval.f1_score(gold, predicted)
        )


def test_classification_metrics():
    labels = [1, 1, 0, 0, 1]
    predicted = [1, 0, 0, 1, 1]
    assert metrics.accuracy(labels, predicted) == pytest.approx(0.6)
    assert metrics.binary_f1(labels, predicted) == pytest.approx(2 * 2 / (2 * 2 + 1 + 1))
    # tp=2 tn=1 fp=1 fn=1: (2-1)/sqrt(3*3*2*2)
    assert metrics.matthews_corrcoef(labels, predicted) == pytest.approx(1 / 6)
    assert metrics.matthews_corrcoef([1, 1], [1, 1]) == 0.0  # undefined -> 0


def test_correlations():
    x = [1.0, 2.0, 2.0, 4.0, 10.0]
    y = [2.0, 1.0, 3.0, 5.0, 6.0]
    assert metrics.pearson(x, [2 * v + 1 for v in x]) == pytest.approx(1.0)
    assert metrics.spearman(x, [v**3 for v in x]) == pytest.approx(1.0)  # monotone
    stats = pytest.importorskip("scipy.stats")
    assert metrics.spearman(x, y) == pytest.approx(stats.spearmanr(x, y)[0])
    assert metrics.pearson(x, y) == pytest.approx(stats.pearsonr(x, y)[0])
