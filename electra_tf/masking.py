"""The one masking implementation: offline (data_prep) and dynamic (tf.data).

Semantics follow google-research/electra's `pretrain_helpers.mask` and BERT:

* Candidates are real tokens (`input_mask == 1`) other than [CLS], [SEP],
  [PAD] and [MASK].
* Per sequence, `max(1, min(N, round(num_real_tokens * rate)))` tokens are
  selected, where N = `max_predictions_per_seq` (capped by the candidates).
  Selection is uniform *without* replacement (the reference samples with
  replacement and then collapses duplicates, which masks slightly fewer tokens
  than the nominal rate).
* Scheme "electra": 85% of selected tokens become [MASK], 15% keep their id.
  Scheme "bert": 80% [MASK], 10% a random non-special id, 10% kept.
* Whole-word masking selects whole words (a token plus its "##" pieces) while
  the running count stays within the target.

All randomness is stateless and keyed by an int32 `seed` pair, so the same
batch and seed give the same masks in any process, under tf.data
parallelism, and after a resume.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np
    import tensorflow as tf

SCHEMES = ("electra", "bert")


def max_predictions_for(max_seq_length: int, rate: float) -> int:
    """`max_predictions_per_seq` exactly as the reference computes it."""
    return int((rate + 0.005) * max_seq_length)


@dataclasses.dataclass(frozen=True)
class MaskingSpec:
    """What and how to mask.

    Args:
        scheme: "electra" (85% [MASK] / 15% kept) or "bert" (80/10/10).
        rate: Fraction of real tokens to select.
        max_predictions: N, the width of the masked_lm_* features.
        mask_id, cls_id, sep_id, pad_id: Special-token ids.
        whole_word: Select whole words (needs `continuation` at call time).
    """

    scheme: str
    rate: float
    max_predictions: int
    mask_id: int
    cls_id: int
    sep_id: int
    pad_id: int
    whole_word: bool = False

    def __post_init__(self) -> None:
        if self.scheme not in SCHEMES:
            raise ValueError(f"masking scheme must be one of {SCHEMES}, got {self.scheme!r}")
        if not 0.0 < self.rate < 1.0:
            raise ValueError(f"mask rate must be in (0, 1), got {self.rate}")
        if self.max_predictions < 1:
            raise ValueError(f"max_predictions must be >= 1, got {self.max_predictions}")


def mask_tokens(
    input_ids: tf.Tensor,
    input_mask: tf.Tensor,
    seed: tf.Tensor,
    spec: MaskingSpec,
    continuation: tf.Tensor | np.ndarray | None = None,
    replacement_ids: tf.Tensor | np.ndarray | None = None,
) -> dict[str, tf.Tensor]:
    """Masks a batch of sequences.

    Args:
        input_ids: int [B, L] token ids (unmasked).
        input_mask: int [B, L], 1 for real tokens.
        seed: int32 [2] stateless seed.
        spec: The masking spec.
        continuation: bool [vocab]: True for "##" pieces (whole-word masking).
        replacement_ids: int32 [K] ids a "bert" random swap may use.

    Returns:
        A dict of int32 `input_ids` [B, L] (masked), `masked_lm_positions`
        [B, N], `masked_lm_ids` [B, N] and float32 `masked_lm_weights` [B, N];
        positions are ascending, padding slots hold 0.

    Example:
        >>> spec = MaskingSpec("electra", 0.15, 19, mask_id=103, cls_id=101,
        ...                    sep_id=102, pad_id=0)
        >>> out = mask_tokens(ids, mask, tf.constant([1, 2]), spec)  # doctest: +SKIP
    """
    # Imported here so data_prep's coordinator process never loads TensorFlow.
    import tensorflow as tf

    input_ids = tf.cast(input_ids, tf.int32)
    input_mask = tf.cast(input_mask, tf.int32)
    seed = tf.cast(seed, tf.int32)
    select_seed, key_seed, action_seed = tf.unstack(
        tf.random.experimental.stateless_split(seed, num=3)
    )
    del key_seed  # Reserved so adding an option later does not shift the streams.
    batch = tf.shape(input_ids)[0]
    length = tf.shape(input_ids)[1]
    n = spec.max_predictions

    candidates = tf.cast(input_mask, tf.bool)
    for special in (spec.cls_id, spec.sep_id, spec.pad_id, spec.mask_id):
        candidates &= tf.not_equal(input_ids, special)

    num_real = tf.reduce_sum(input_mask, axis=-1)
    num_candidates = tf.reduce_sum(tf.cast(candidates, tf.int32), axis=-1)
    target = tf.cast(tf.round(tf.cast(num_real, tf.float32) * spec.rate), tf.int32)
    target = tf.maximum(1, tf.minimum(n, target))
    target = tf.minimum(target, num_candidates)

    # Word ids: every candidate token starts a word unless whole-word masking
    # joins a "##" piece to the candidate token before it. Non-candidates map to
    # a dummy word `length` that is never selected.
    if spec.whole_word:
        if continuation is None:
            raise ValueError("whole-word masking needs the vocab's continuation table")
        is_piece = tf.gather(tf.convert_to_tensor(continuation, tf.bool), input_ids)
        prev_candidate = tf.pad(candidates[:, :-1], [[0, 0], [1, 0]])
        starts = candidates & ~(is_piece & prev_candidate)
    else:
        starts = candidates
    word_id = tf.cumsum(tf.cast(starts, tf.int32), axis=-1) - 1
    word_id = tf.where(candidates, word_id, length)
    num_words = length + 1

    # Tokens per word, then a random order of words; take words in that order
    # while the running token count stays within the target.
    row_offset = tf.range(batch)[:, None] * num_words
    word_len = tf.math.unsorted_segment_sum(
        tf.cast(candidates, tf.int32), word_id + row_offset, batch * num_words
    )
    word_len = tf.reshape(word_len, [batch, num_words])
    keys = tf.random.stateless_uniform([batch, num_words], seed=select_seed)
    real_word = (word_len > 0) & (tf.range(num_words)[None, :] < length)
    keys = tf.where(real_word, keys, -1.0)
    order = tf.argsort(keys, axis=-1, direction="DESCENDING", stable=True)
    sorted_len = tf.gather(word_len, order, batch_dims=1)
    sorted_real = tf.gather(real_word, order, batch_dims=1)
    running = tf.cumsum(sorted_len, axis=-1)
    take_sorted = sorted_real & (running <= target[:, None])
    take_word = tf.gather(take_sorted, tf.argsort(order, axis=-1, stable=True), batch_dims=1)
    selected = tf.gather(take_word, word_id, batch_dims=1) & candidates

    # Selected positions, ascending, padded with 0 to N.
    positions_range = tf.range(length)[None, :]
    score = tf.where(selected, length - positions_range, 0)
    top = tf.math.top_k(score, k=tf.minimum(n, length)).values
    top = tf.pad(top, [[0, 0], [0, n - tf.shape(top)[1]]])
    weights = top > 0
    positions = tf.where(weights, length - top, 0)
    weights_i = tf.cast(weights, tf.int32)
    original = tf.gather(input_ids, positions, batch_dims=1) * weights_i

    # What each selected token becomes.
    u = tf.random.stateless_uniform([batch, n], seed=action_seed)
    if spec.scheme == "electra":
        to_mask = u < 0.85
        new_ids = tf.where(to_mask, spec.mask_id, original)
    else:
        if replacement_ids is None:
            raise ValueError("bert masking needs replacement_ids")
        replacement_ids = tf.convert_to_tensor(replacement_ids, tf.int32)
        random_index = tf.random.stateless_uniform(
            [batch, n],
            seed=tf.random.experimental.stateless_fold_in(action_seed, 1),
            maxval=tf.shape(replacement_ids)[0],
            dtype=tf.int32,
        )
        random_ids = tf.gather(replacement_ids, random_index)
        new_ids = tf.where(u < 0.8, spec.mask_id, tf.where(u < 0.9, random_ids, original))

    # Only real slots are written, so padding slots cannot touch position 0.
    b_index = tf.broadcast_to(tf.range(batch)[:, None], [batch, n])
    indices = tf.stack([b_index, positions], axis=-1)
    indices = tf.boolean_mask(indices, weights)
    updates = tf.boolean_mask(new_ids, weights)
    masked_ids = tf.tensor_scatter_nd_update(input_ids, indices, updates)

    return {
        "input_ids": masked_ids,
        "masked_lm_positions": positions,
        "masked_lm_ids": original,
        "masked_lm_weights": tf.cast(weights, tf.float32),
    }


@dataclasses.dataclass(frozen=True, eq=False)
class Masker:
    """A `MaskingSpec` bound to the vocab tables it may need; call it on a batch.

    Example:
        >>> masker = Masker(spec)  # doctest: +SKIP
        >>> masked = masker(input_ids, input_mask, seed)  # doctest: +SKIP
    """

    spec: MaskingSpec
    continuation: np.ndarray | None = None
    replacement_ids: np.ndarray | None = None

    def __call__(self, input_ids, input_mask, seed) -> dict[str, tf.Tensor]:
        return mask_tokens(
            input_ids, input_mask, seed, self.spec, self.continuation, self.replacement_ids
        )

    @classmethod
    def from_vocab(cls, spec_kwargs: dict, vocab) -> Masker:
        """Builds the spec's special ids and tables from an `electra_tf.vocab.Vocab`."""
        spec = MaskingSpec(
            mask_id=vocab.mask_id,
            cls_id=vocab.cls_id,
            sep_id=vocab.sep_id,
            pad_id=vocab.pad_id,
            **spec_kwargs,
        )
        return cls(spec, vocab.continuation_table(), vocab.random_replacement_ids())
