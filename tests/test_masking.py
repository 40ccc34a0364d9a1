"""The one masking implementation: selection counts, schemes, determinism."""

import numpy as np
import pytest
import tensorflow as tf

from electra_tf.masking import Masker, MaskingSpec, mask_tokens, max_predictions_for
from electra_tf.vocab import Vocab

PAD, UNK, CLS, SEP, MASK = 0, 100, 101, 102, 103


def _batch(batch=64, length=128, real=100, seed=0):
    rng = np.random.default_rng(seed)
    ids = rng.integers(1000, 30000, size=(batch, length)).astype(np.int32)
    ids[:, 0] = CLS
    ids[:, 50] = SEP
    ids[:, real - 1] = SEP
    ids[:, real:] = PAD
    mask = np.zeros((batch, length), np.int32)
    mask[:, :real] = 1
    return ids, mask


def _spec(scheme="electra", whole_word=False, rate=0.15, length=128):
    return MaskingSpec(
        scheme, rate, max_predictions_for(length, rate), MASK, CLS, SEP, PAD, whole_word=whole_word
    )


def test_max_predictions_matches_reference():
    assert max_predictions_for(128, 0.15) == 19
    assert max_predictions_for(512, 0.25) == 130


def test_electra_scheme_counts_positions_and_values():
    ids, mask = _batch()
    out = {k: v.numpy() for k, v in mask_tokens(ids, mask, tf.constant([3, 4]), _spec()).items()}
    weights = out["masked_lm_weights"]
    # round(100 real tokens * 0.15) = 15 per row, all distinct positions.
    assert (weights.sum(axis=1) == 15).all()
    for row in range(len(ids)):
        pos = out["masked_lm_positions"][row][weights[row] > 0]
        assert (np.diff(pos) > 0).all(), "positions ascending and distinct"
        assert (pos > 0).all() and (pos < 100).all()
        assert not np.isin(ids[row, pos], [CLS, SEP, PAD, MASK]).any(), "special token selected"
        np.testing.assert_array_equal(out["masked_lm_ids"][row][weights[row] > 0], ids[row, pos])
        assert (out["masked_lm_positions"][row][weights[row] == 0] == 0).all()
        # Unselected positions are untouched; selected ones are [MASK] or kept.
        untouched = np.setdiff1d(np.arange(128), pos)
        np.testing.assert_array_equal(out["input_ids"][row, untouched], ids[row, untouched])
        assert np.isin(out["input_ids"][row, pos], [MASK]).sum() + (
            out["input_ids"][row, pos] == ids[row, pos]
        ).sum() == len(pos)
    masked_share = (out["input_ids"] == MASK).sum() / weights.sum()
    assert 0.82 < masked_share < 0.88  # 85% [MASK], 15% kept (960 draws)


def test_bert_scheme_80_10_10(vocab_path):
    vocab = Vocab.load(vocab_path)
    ids, mask = _batch(batch=256)
    masker = Masker.from_vocab(dict(scheme="bert", rate=0.15, max_predictions=19), vocab)
    out = {k: v.numpy() for k, v in masker(ids, mask, tf.constant([1, 1])).items()}
    w = out["masked_lm_weights"] > 0
    new = np.take_along_axis(out["input_ids"], out["masked_lm_positions"], 1)[w]
    old = out["masked_lm_ids"][w]
    is_mask = new == MASK
    kept = new == old
    replaced = ~is_mask & ~kept
    n = w.sum()
    assert abs(is_mask.sum() / n - 0.8) < 0.03
    assert abs(replaced.sum() / n - 0.1) < 0.02
    assert abs(kept.sum() / n - 0.1) < 0.02
    # Random replacements avoid special and [unused] tokens.
    assert not np.isin(new[replaced], [PAD, UNK, CLS, SEP, MASK]).any()


def test_whole_word_masking_takes_whole_words(vocab_path):
    vocab = Vocab.load(vocab_path)
    pieces = vocab.index
    word = [pieces["play"], pieces["##ing"], pieces["##ly"]]
    row = [CLS] + (word + [pieces["the"]]) * 20 + [SEP]
    ids = np.array([row + [PAD] * (128 - len(row))] * 16, np.int32)
    mask = (ids != PAD).astype(np.int32)
    masker = Masker.from_vocab(
        dict(scheme="electra", rate=0.15, max_predictions=19, whole_word=True), vocab
    )
    out = {k: v.numpy() for k, v in masker(ids, mask, tf.constant([5, 6])).items()}
    continuation = vocab.continuation_table()
    for r in range(16):
        selected = np.zeros(128, bool)
        selected[out["masked_lm_positions"][r][out["masked_lm_weights"][r] > 0]] = True
        assert selected.sum() > 0
        for p in np.flatnonzero(selected):
            # A selected piece's whole word is selected.
            start = p
            while continuation[ids[r, start]]:
                start -= 1
            end = p + 1
            while end < 128 and continuation[ids[r, end]]:
                end += 1
            assert selected[start:end].all()
        assert selected.sum() <= round(mask[r].sum() * 0.15)


def test_same_seed_same_masks_other_seed_other_masks():
    ids, mask = _batch(batch=8)
    a = mask_tokens(ids, mask, tf.constant([1, 2]), _spec())
    b = mask_tokens(ids, mask, tf.constant([1, 2]), _spec())
    c = mask_tokens(ids, mask, tf.constant([1, 3]), _spec())
    np.testing.assert_array_equal(a["input_ids"], b["input_ids"])
    assert not np.array_equal(a["masked_lm_positions"], c["masked_lm_positions"])


def test_short_sequences_mask_at_least_one_and_never_overflow():
    ids = np.array([[CLS, 2000, SEP, PAD], [CLS, SEP, PAD, PAD]], np.int32)
    mask = (ids != PAD).astype(np.int32)
    spec = MaskingSpec("electra", 0.15, 2, MASK, CLS, SEP, PAD)
    out = mask_tokens(ids, mask, tf.constant([0, 0]), spec)
    w = out["masked_lm_weights"].numpy()
    assert w[0].sum() == 1 and out["masked_lm_positions"].numpy()[0, 0] == 1
    assert w[1].sum() == 0  # No candidate at all: nothing is masked.


def test_bad_spec_is_rejected():
    with pytest.raises(ValueError, match="scheme"):
        MaskingSpec("random", 0.15, 19, MASK, CLS, SEP, PAD)
    with pytest.raises(ValueError, match="rate"):
        MaskingSpec("electra", 1.5, 19, MASK, CLS, SEP, PAD)
