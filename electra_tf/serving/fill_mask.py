"""Fill-mask with the generator, the masked language model ELECTRA trains
beside its discriminator (Hugging Face's `fill-mask` pipeline, keras-hub's
`MaskedLM` tasks).

Each `[MASK]` in a text is one word piece to predict. Predictions are whole-
word aware: a `[MASK]` that starts a word (after a space, punctuation or the
start of the text) is offered only pieces that start a word, and one glued to
the word before it (`play[MASK]`) only `##` continuations, shown completed
(`player`). Special tokens and `[unusedN]` fillers are never offered. The
probabilities are the generator's softmax over its whole vocab.

    >>> fill = FillMask.from_model_dir("runs/small")  # doctest: +SKIP
    >>> fill(["The cat sat on the [MASK]."], top_k=3)[0][0][0].word  # doctest: +SKIP
    'floor'
"""

from __future__ import annotations

import dataclasses
import re

import keras
import numpy as np
import tensorflow as tf

from electra_tf.checkpoints import find_towers, find_vocab, load_tower
from electra_tf.tokenizer import WordPieceTokenizer
from electra_tf.vocab import Vocab

MASK = "[MASK]"
_LAST_WORD = re.compile(r"(\w+)$")


@dataclasses.dataclass(frozen=True)
class Prediction:
    """One candidate for one `[MASK]`."""

    token: str  # the word piece
    word: str  # the masked word as it would read (a ## piece joined to its word)
    token_id: int
    probability: float


@dataclasses.dataclass(frozen=True)
class MaskSlot:
    """A `[MASK]` of a text: its token position and the word it is glued to."""

    position: int
    glued_to: str | None  # the word right before it with no space, else None


def find_generator(path: str, flag: str = "--model_dir") -> str:
    """The generator tower in `path`: a pre-training --model_dir, an
    `electra_tf.convert` output, or the tower directory itself."""
    found = find_towers(path, ("generator",), itself="generator")
    if not found:
        raise ValueError(
            f"{flag}={path}: no generator/ tower (model.weights.h5) in it: pass a pre-training "
            "--model_dir or an electra_tf.convert output of an ElectraForMaskedLM / "
            "ElectraForPreTraining + generator checkpoint"
        )
    return found["generator"]


def candidates(vocab: Vocab) -> tuple[np.ndarray, np.ndarray]:
    """bool [vocab] masks of the pieces a [MASK] may become: at a word start
    (no ## piece, no [SPECIAL] or [unusedN]), and glued to a word (## pieces)."""
    bracketed = np.array([t.startswith("[") and t.endswith("]") for t in vocab.tokens])
    continuation = np.array([t.startswith("##") for t in vocab.tokens])
    return ~bracketed & ~continuation, continuation


class FillMask:
    """Top-k word pieces at each `[MASK]` of some texts.

    Args:
        generator: An `ElectraGenerator` (logits at `masked_lm_positions`).
        tokenizer: The `WordPieceTokenizer` of the generator's vocab.
    """

    def __init__(self, generator: keras.Model, tokenizer: WordPieceTokenizer):
        self.generator = generator
        self.tokenizer = tokenizer
        vocab = tokenizer.vocab
        self.mask_id = vocab.mask_id
        self.max_length = generator.config.max_position_embeddings
        word_start, glued = candidates(vocab)
        self._allowed = {False: word_start, True: glued}

    @classmethod
    def from_model_dir(cls, path: str, vocab: str | None = None) -> FillMask:
        tower = find_generator(path)
        vocab_file = Vocab.load(find_vocab(tower, vocab))
        generator = load_tower(tower, "generator")
        if generator.config.vocab_size != vocab_file.size:
            raise ValueError(
                f"{vocab_file.path} has {vocab_file.size} tokens but the generator in {tower} "
                f"was trained with {generator.config.vocab_size}: pass the right --vocab"
            )
        return cls(generator, WordPieceTokenizer(vocab_file, lower_case=vocab_file.uncased))

    def encode(self, text: str) -> tuple[list[int], list[MaskSlot]]:
        """`[CLS] pieces [SEP]` ids of `text`, `[MASK]` kept as the mask token."""
        parts = text.split(MASK)
        if len(parts) < 2:
            raise ValueError(f"no {MASK} in {text!r}")
        ids = [self.tokenizer.vocab.cls_id]
        slots = []
        for i, part in enumerate(parts):
            ids += self.tokenizer.token_ids(part)
            if i < len(parts) - 1:
                glued = _LAST_WORD.search(part) if part and not part[-1].isspace() else None
                slots.append(MaskSlot(len(ids), glued.group(1) if glued else None))
                ids.append(self.mask_id)
        ids.append(self.tokenizer.vocab.sep_id)
        if len(ids) > self.max_length:
            raise ValueError(
                f"{text[:60]!r}... is {len(ids)} tokens; the generator takes {self.max_length}"
            )
        return ids, slots

    def __call__(self, texts: list[str], top_k: int = 10) -> list[list[list[Prediction]]]:
        """For each text, for each `[MASK]` in it, the `top_k` predictions, best first."""
        if top_k < 1:
            raise ValueError(f"--top_k must be >= 1, got {top_k}")
        encoded = [self.encode(t) for t in texts]
        width = max(len(ids) for ids, _ in encoded)
        masks = max(len(slots) for _, slots in encoded)
        batch = {
            "input_ids": np.zeros((len(texts), width), np.int32),
            "input_mask": np.zeros((len(texts), width), np.int32),
            "segment_ids": np.zeros((len(texts), width), np.int32),
            "masked_lm_positions": np.zeros((len(texts), masks), np.int32),
        }
        for row, (ids, slots) in enumerate(encoded):
            batch["input_ids"][row, : len(ids)] = ids
            batch["input_mask"][row, : len(ids)] = 1
            batch["masked_lm_positions"][row, : len(slots)] = [s.position for s in slots]
        logits = np.asarray(self.generator(batch, training=False), np.float64)
        probabilities = np.exp(logits - logits.max(-1, keepdims=True))
        probabilities /= probabilities.sum(-1, keepdims=True)
        tokens = self.tokenizer.vocab.tokens
        out = []
        for row, (_, slots) in enumerate(encoded):
            per_text = []
            for m, slot in enumerate(slots):
                p = np.where(self._allowed[slot.glued_to is not None], probabilities[row, m], -1.0)
                best = np.argsort(-p, kind="stable")[:top_k]
                per_text.append(
                    [
                        Prediction(
                            tokens[i],
                            slot.glued_to + tokens[i][2:] if slot.glued_to else tokens[i],
                            int(i),
                            float(p[i]),
                        )
                        for i in best
                        if p[i] >= 0
                    ]
                )
            out.append(per_text)
        return out


def fill_mask_function(module, generator: keras.Model, vocab: Vocab, top_k: int = 10):
    """The `fill_mask` signature of an export: texts in, for each [MASK] the
    `top_k` pieces (`tokens`, `token_ids`, `probabilities`, [batch, masks, k])
    and `mask_count` [batch]; the same predictions as `FillMask`, tokenized in
    the graph by `module`'s tokenizer. Masks past the export's
    max_seq_length are cut off with the text."""
    mask_id = tf.constant(vocab.mask_id, tf.int64)
    tokens = tf.constant(list(vocab.tokens))
    word_start, glued_piece = (tf.constant(c) for c in candidates(vocab))

    def fill(text):
        text = tf.strings.unicode_transcode(
            text, "UTF-8", "UTF-8", errors="replace", replacement_char=0xFFFD
        )
        parts = tf.strings.split(text, MASK)  # [batch, (parts)]: a [MASK] after each but the last
        count = parts.row_lengths()
        pieces = module.tokenizer.tokenize(parts.flat_values)  # [all parts, (pieces)]
        last = tf.ragged.range(count).flat_values == tf.repeat(count - 1, count)
        with_mask = tf.concat(
            [pieces, tf.RaggedTensor.from_row_lengths(tf.fill(tf.shape(last), mask_id),
                                                      tf.ones(tf.shape(last), tf.int64))],
            axis=1,
        )  # fmt: skip
        lengths = with_mask.row_lengths()
        trailing = tf.ragged.range(lengths) == tf.expand_dims(lengths - 1, 1)
        kept = tf.ragged.boolean_mask(with_mask, ~(trailing & tf.expand_dims(last, 1)))
        ids = tf.RaggedTensor.from_row_lengths(kept, count).merge_dims(1, 2)
        ids, _ = module._tf_text.combine_segments(
            [ids[:, : module.max_seq_length - 2]],
            start_of_sequence_id=module.cls_id,
            end_of_segment_id=module.sep_id,
        )
        # Whether each [MASK] is glued to the word before it (as FillMask.encode).
        glued = tf.strings.regex_full_match(parts.flat_values, r"(?s).*[\pL\pN_]")
        glued = tf.RaggedTensor.from_row_lengths(tf.boolean_mask(glued, ~last), count - 1)
        positions = tf.ragged.boolean_mask(tf.ragged.range(ids.row_lengths()), ids == mask_id)
        masks = positions.row_lengths()
        glued = tf.ragged.boolean_mask(glued, tf.ragged.range(count - 1) < tf.expand_dims(masks, 1))
        inputs = module._pad_to_one(
            {
                "input_ids": tf.cast(ids.to_tensor(0), tf.int32),
                "input_mask": tf.cast(tf.ones_like(ids).to_tensor(0), tf.int32),
                "segment_ids": tf.zeros_like(tf.cast(ids.to_tensor(0), tf.int32)),
            }
        )
        inputs["masked_lm_positions"] = tf.cast(positions.to_tensor(0), tf.int32)
        probabilities = tf.nn.softmax(tf.cast(generator(inputs, training=False), tf.float32))
        allowed = tf.where(tf.expand_dims(glued.to_tensor(False), -1), glued_piece, word_start)
        scores = tf.where(allowed, probabilities, -1.0)
        k = tf.minimum(top_k, tf.shape(scores)[-1])
        values, indices = tf.math.top_k(scores, k=k)
        return {
            "tokens": tf.gather(tokens, indices),
            "token_ids": indices,
            "probabilities": values,
            "mask_count": tf.cast(masks, tf.int32),
        }

    return tf.function(fill, input_signature=[tf.TensorSpec([None], tf.string, name="text")])
