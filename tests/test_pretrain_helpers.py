"""Gather/scatter exactness, Gumbel sampling statistics, RTD labels."""

import numpy as np
import tensorflow as tf

from electra_tf.config import ElectraConfig
from electra_tf.modeling import ElectraPretrainer
from electra_tf.modeling.pretrain_helpers import (
    gather_positions,
    sample_from_softmax,
    scatter_positions,
)


def test_gather_positions_matches_numpy():
    rng = np.random.default_rng(0)
    seq = rng.normal(size=(3, 10, 4)).astype(np.float32)
    pos = rng.integers(0, 10, (3, 5))
    out = gather_positions(seq, pos).numpy()
    for b in range(3):
        np.testing.assert_array_equal(out[b], seq[b, pos[b]])
    np.testing.assert_array_equal(gather_positions(seq[..., 0], pos).numpy()[1], seq[1, pos[1], 0])


def test_scatter_positions_writes_only_weighted_slots():
    seq = np.arange(20, dtype=np.int32).reshape(2, 10) + 100
    pos = np.array([[1, 4, 0], [9, 2, 0]])
    upd = np.array([[7, 8, 9], [5, 6, 9]])
    w = np.array([[1.0, 1.0, 0.0], [1.0, 1.0, 0.0]])
    out, written = (t.numpy() for t in scatter_positions(seq, upd, pos, w))
    expected = seq.copy()
    expected[0, [1, 4]] = [7, 8]
    expected[1, [9, 2]] = [5, 6]
    np.testing.assert_array_equal(out, expected)  # position 0 (padding slot) untouched
    assert written.sum() == 4 and written[0, 1] == written[1, 9] == 1


def test_samples_follow_the_softmax():
    logits = np.log(np.array([[0.5, 0.25, 0.15, 0.1]], np.float32))
    logits = np.tile(logits, (20000, 1))[:, None, :]  # [B, N=1, V=4]
    draws = sample_from_softmax(logits, tf.constant([1, 2])).numpy().ravel()
    freq = np.bincount(draws, minlength=4) / len(draws)
    np.testing.assert_allclose(freq, [0.5, 0.25, 0.15, 0.1], atol=0.012)
    # Temperature 0.5 sharpens: p ∝ p0^2.
    sharp = sample_from_softmax(logits, tf.constant([3, 4]), temperature=0.5).numpy().ravel()
    p2 = np.array([0.5, 0.25, 0.15, 0.1]) ** 2
    np.testing.assert_allclose(
        np.bincount(sharp, minlength=4) / len(sharp), p2 / p2.sum(), atol=0.012
    )
    again = sample_from_softmax(logits, tf.constant([1, 2])).numpy().ravel()
    np.testing.assert_array_equal(draws, again)


def test_samples_follow_the_softmax_across_blocks_and_skip_impossible_ids():
    # A 300-word vocab spans three search blocks, the last one partly padding.
    rng = np.random.default_rng(3)
    vocab = 300
    logits = np.full((4000, 1, vocab), -np.inf, np.float32)
    allowed = np.array([0, 127, 128, 255, 256, 299])
    weights = rng.uniform(0.5, 2.0, allowed.size)
    logits[:, :, allowed] = np.log(weights / weights.sum())
    draws = sample_from_softmax(logits, tf.constant([5, 6])).numpy().ravel()
    assert set(np.unique(draws)) <= set(allowed)  # never a zero-probability id or padding
    freq = np.bincount(draws, minlength=vocab)[allowed] / draws.size
    np.testing.assert_allclose(freq, weights / weights.sum(), atol=0.025)
    # A near-certain token among 30,522 is drawn almost always, never out of range.
    peaked = rng.normal(size=(64, 4, 30522)).astype(np.float32)
    peaked[..., 30521] = 40.0
    out = sample_from_softmax(peaked, tf.constant([1, 1])).numpy()
    assert out.shape == (64, 4) and (out == 30521).all()


def test_samples_do_not_depend_on_how_the_batch_is_split():
    rng = np.random.default_rng(1)
    logits = rng.normal(size=(6, 3, 30522)).astype(np.float32)  # odd vocab rows
    seed = tf.constant([7, 9])
    whole = sample_from_softmax(logits, seed).numpy()
    for start, stop in ((0, 2), (2, 5), (5, 6)):
        part = sample_from_softmax(logits[start:stop], seed, row_offset=start).numpy()
        np.testing.assert_array_equal(part, whole[start:stop])


def test_rtd_labels_are_zero_where_the_sample_equals_the_original():
    config = ElectraConfig.from_preset("tiny", vocab_size=50, dropout=0.0)
    model = ElectraPretrainer(config)
    model.build()
    # Force the generator to predict the original token with certainty: its
    # output bias dominates for id 7, and every masked original is 7.
    bias = model.generator.head._bias
    bias.assign(np.where(np.arange(50) == 7, 1e4, -1e4).astype(np.float32))
    ids = np.full((2, 8), 9, np.int32)
    ids[:, 0] = 2
    pos = np.array([[1, 3], [2, 5]])
    masked = ids.copy()
    masked[0, [1, 3]] = 4
    masked[1, [2, 5]] = 4
    batch = {
        "input_ids": masked,
        "input_mask": np.ones((2, 8), np.int32),
        "segment_ids": np.zeros((2, 8), np.int32),
        "masked_lm_positions": pos,
        "masked_lm_ids": np.full((2, 2), 7),
        "masked_lm_weights": np.ones((2, 2), np.float32),
    }
    out = model._forward(
        batch, {"num_masked": 4.0, "num_tokens": 16.0}, tf.constant([0, 0]), training=False
    )
    np.testing.assert_array_equal(out["sampled"].numpy(), 7)
    assert out["labels"].numpy().sum() == 0  # sampled == original -> "original"
    # Now make the generator always sample id 8 (!= original 7): exactly the
    # masked positions are labelled replaced.
    bias.assign(np.where(np.arange(50) == 8, 1e4, -1e4).astype(np.float32))
    out = model._forward(
        batch, {"num_masked": 4.0, "num_tokens": 16.0}, tf.constant([0, 0]), training=False
    )
    labels = out["labels"].numpy()
    expected = np.zeros((2, 8))
    expected[0, [1, 3]] = 1
    expected[1, [2, 5]] = 1
    np.testing.assert_array_equal(labels, expected)
