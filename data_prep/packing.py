"""Packs tokenized sentences into `[CLS] A [SEP] B [SEP]` pre-training sequences.

Follows google-research/electra's `build_pretraining_dataset.ExampleBuilder`:
sentences accumulate up to a target length (the max length, or 5% of the
time a random length in [5, max]); 10% of sequences are single-segment;
otherwise a sentence joins segment A while it fits in half the budget (or by
a coin flip when it overflows and B is still empty). One deliberate change:
where the reference truncates an over-long sequence and drops the rest, we
carry the cut tokens into the next sequence, so no token is lost.
"""

from __future__ import annotations

import random

import numpy as np


class SequencePacker:
    """Turns a stream of documents into packed id sequences.

    Args:
        max_seq_length: Sequence length including [CLS]/[SEP].
        cls_id, sep_id: Special-token ids.
        rng: The random source (seeded per chunk by the caller).

    Example:
        >>> packer = SequencePacker(16, cls_id=101, sep_id=102, rng=random.Random(0))
        >>> seqs = packer.pack_document([np.arange(1000, 1010), np.arange(2000, 2012)])
        >>> [len(ids) for ids, _ in seqs]  # doctest: +SKIP
    """

    def __init__(self, max_seq_length: int, cls_id: int, sep_id: int, rng: random.Random):
        if max_seq_length < 8:
            raise ValueError(f"--max_seq_length={max_seq_length} is too small; need at least 8")
        self.max_len = max_seq_length
        self.cls_id = cls_id
        self.sep_id = sep_id
        self.rng = rng
        self.target_len = max_seq_length

    def pack_document(self, sentences: list[np.ndarray]) -> list[tuple[np.ndarray, int]]:
        """Packs one document.

        Returns a list of `(ids, len_a)`: `ids` is the unpadded sequence
        `[CLS] A [SEP] (B [SEP])`, `len_a` the length of `[CLS] A [SEP]`.
        """
        out: list[tuple[np.ndarray, int]] = []
        current: list[np.ndarray] = []
        current_len = 0
        for sentence in sentences:
            if len(sentence) == 0:
                continue
            current.append(sentence)
            current_len += len(sentence)
            if current_len >= self.target_len:
                seq, leftover = self._make_sequence(current)
                out.append(seq)
                current = [leftover] if len(leftover) else []
                current_len = len(leftover)
        # The document ends: flush everything (leftovers may fill several).
        while current_len > 0:
            seq, leftover = self._make_sequence(current)
            out.append(seq)
            current = [leftover] if len(leftover) else []
            current_len = len(leftover)
        return out

    def pack_documents(self, documents: list[list[np.ndarray]]) -> tuple[list, int]:
        """Packs consecutive documents into shared sequences (RoBERTa's
        "full-sentences" packing): a `[SEP]` ends each document but the last,
        and sequences fill across document boundaries instead of ending, padded,
        at each one. Short-document corpora then carry almost no padding.

        Returns (sequences as `pack_document` gives them, separators inserted).
        """
        stream: list[np.ndarray] = []
        separators = 0
        for document in documents:
            sentences = [s for s in document if len(s)]
            if not sentences:
                continue
            if stream:
                stream[-1] = np.append(stream[-1], np.int32(self.sep_id))
                separators += 1
            stream.extend(sentences)
        return self.pack_document(stream), separators

    def _make_sequence(
        self, sentences: list[np.ndarray]
    ) -> tuple[tuple[np.ndarray, int], np.ndarray]:
        rng = self.rng
        if rng.random() < 0.1:
            first_target = 100000
        else:
            # -3 for the [CLS] and two [SEP] not yet in the text.
            first_target = (self.target_len - 3) // 2
        first: list[np.ndarray] = []
        second: list[np.ndarray] = []
        first_len = 0
        second_len = 0
        for sentence in sentences:
            n = len(sentence)
            if (
                first_len == 0
                or first_len + n < first_target
                or (second_len == 0 and first_len < first_target and rng.random() < 0.5)
            ):
                first.append(sentence)
                first_len += n
            else:
                second.append(sentence)
                second_len += n
        a = np.concatenate(first) if first else np.zeros(0, np.int32)
        b = np.concatenate(second) if second else np.zeros(0, np.int32)
        keep_a = min(len(a), self.max_len - 2)
        keep_b = min(len(b), max(0, self.max_len - keep_a - 3))
        # Text order is A then B, so the carried tokens are A's tail then B's.
        leftover = np.concatenate([a[keep_a:], b[keep_b:]])
        a, b = a[:keep_a], b[:keep_b]

        if rng.random() < 0.05:
            self.target_len = rng.randint(5, self.max_len)
        else:
            self.target_len = self.max_len

        parts = [np.array([self.cls_id], np.int32), a, np.array([self.sep_id], np.int32)]
        if len(b):
            parts += [b, np.array([self.sep_id], np.int32)]
        ids = np.concatenate(parts).astype(np.int32)
        return (ids, keep_a + 2), leftover
