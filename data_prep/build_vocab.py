r"""Learns a WordPiece vocabulary from raw text with tensorflow-text's learner.

    python -m data_prep.build_vocab --input='corpus/*.txt.gz' --vocab_size=30522 \
        --lower_case --output=vocab.txt

Words are counted in a streaming pass (BERT's basic tokenization: optional
lower-casing and accent stripping, split on whitespace and punctuation), so
memory grows with the number of distinct words, not with the corpus. The
special tokens sit at BERT's ids when the size allows ([PAD]=0, [UNK]=100,
[CLS]=101, [SEP]=102, [MASK]=103, with [unusedN] fillers, as in the released
vocab); smaller vocabs put them at 0-4. The file always has exactly
--vocab_size lines: the learner aims a little under the target, and the rest
is filled with [unusedN] tokens.
"""

from __future__ import annotations

import collections
import os
import re
import sys
import time

from absl import flags

from data_prep import text_source
from electra_tf import cli
from electra_tf.io_utils import atomic_write_text
from electra_tf.vocab import SPECIAL_TOKENS

FLAGS = flags.FLAGS

# BERT's layout: [PAD], [unused0..98], [UNK], [CLS], [SEP], [MASK].
_BERT_LAYOUT_MIN_SIZE = 1000


def define_flags() -> None:
    flags.DEFINE_string("input", None, "Comma-separated globs of .txt, .txt.gz or .bz2 files.")
    flags.DEFINE_integer("vocab_size", 30522, "Exact number of lines in the output vocab.")
    flags.DEFINE_boolean("lower_case", True, "Lower-case and strip accents before counting.")
    flags.DEFINE_string("output", None, "Where to write the vocab (one token per line).")
    flags.DEFINE_integer("min_count", 2, "Ignore words seen fewer times than this.")
    flags.DEFINE_integer("max_unique_chars", 1000, "Alphabet size limit (rarer chars -> [UNK]).")


def reserved_tokens(vocab_size: int) -> list[str]:
    """The special tokens in BERT's positions when the size allows."""
    if vocab_size >= _BERT_LAYOUT_MIN_SIZE:
        return (
            ["[PAD]"] + [f"[unused{i}]" for i in range(99)] + ["[UNK]", "[CLS]", "[SEP]", "[MASK]"]
        )
    return list(SPECIAL_TOKENS)


class WordCounter:
    """Counts the words of text chunks with BERT's basic tokenization (tf-text's)."""

    def __init__(self, lower_case: bool, batch_lines: int = 4096):
        import tensorflow as tf
        from tensorflow_text.python.ops.bert_tokenizer import BasicTokenizer

        self._tf = tf
        self.tokenizer = BasicTokenizer(lower_case=lower_case)
        self.batch_lines = batch_lines
        self.reader = text_source.ChunkReader()

    def count(self, chunk: text_source.Chunk) -> collections.Counter:
        import numpy as np

        lines = [line for doc in text_source.documents(self.reader.read(chunk)) for line in doc]
        counts: collections.Counter = collections.Counter()
        for i in range(0, len(lines), self.batch_lines):
            batch = self._tf.constant(lines[i : i + self.batch_lines])
            words = self.tokenizer.tokenize(batch).flat_values.numpy()
            unique, n = np.unique(words, return_counts=True)
            counts.update({w.decode("utf-8", "replace"): c for w, c in zip(unique, n.tolist())})
        return counts


def count_words(paths: list[str], lower_case: bool, batch_lines: int = 4096) -> collections.Counter:
    """Streams the inputs through BERT's basic tokenizer and counts words."""
    counter = WordCounter(lower_case, batch_lines)
    counts: collections.Counter = collections.Counter()
    for chunk in text_source.plan_chunks(paths):
        counts.update(counter.count(chunk))
    counter.reader.close()
    return counts


def learn_vocab(
    word_counts: dict[str, int], vocab_size: int, min_count: int = 2, max_unique_chars: int = 1000
) -> list[str]:
    """Learns WordPiece tokens and lays them out with the reserved tokens."""
    from tensorflow_text.tools.wordpiece_vocab import wordpiece_tokenizer_learner_lib as learner

    reserved = reserved_tokens(vocab_size)
    if vocab_size <= len(reserved) + 10:
        raise ValueError(
            f"--vocab_size={vocab_size} is too small (reserved tokens take {len(reserved)})"
        )
    # Sorted: the result must not depend on the order the counts arrive in
    # (a Beam combine gives them in any order).
    pairs = sorted((w, c) for w, c in word_counts.items() if c >= min_count)
    if not pairs:
        raise ValueError("no word occurs --min_count times in --input; nothing to learn from")
    learned = learner.learn(
        pairs,
        vocab_size=vocab_size,
        reserved_tokens=reserved,
        lower_thresh=min_count,
        max_unique_chars=max_unique_chars,
    )
    reserved_set = set(reserved)
    vocab = list(reserved) + [t for t in learned if t not in reserved_set]
    vocab = vocab[:vocab_size]
    i = 99 if vocab_size >= _BERT_LAYOUT_MIN_SIZE else 0
    while len(vocab) < vocab_size:
        token = f"[unused{i}]"
        i += 1
        if token not in vocab:
            vocab.append(token)
    return vocab


def summary(vocab: list[str]) -> str:
    """How the vocab's lines split into reserved tokens, tokens learned from
    the corpus, and `[unusedN]` fillers (what pads it to the size asked for
    when the corpus has fewer distinct pieces)."""
    reserved = set(reserved_tokens(len(vocab)))
    fillers = sum(1 for t in vocab if t not in reserved and re.fullmatch(r"\[unused\d+\]", t))
    learned = len(vocab) - len(reserved) - fillers
    text = f"{learned:,} learned from the corpus, {len(reserved)} reserved, {fillers:,} fillers"
    if fillers:
        text += (
            f" ([unusedN]: the corpus gave only {learned:,} word pieces; a --vocab_size near "
            f"{learned + len(reserved):,} would do)"
        )
    return text


def command() -> None:
    """The command line's job, on the parsed flags."""
    start = time.time()
    paths = text_source.expand_globs(FLAGS.input)
    counts = count_words(paths, FLAGS.lower_case)
    print(
        f"[build_vocab] counted {sum(counts.values()):,} words, {len(counts):,} distinct, "
        f"in {time.time() - start:.1f} s",
        file=sys.stderr,
    )
    vocab = learn_vocab(counts, FLAGS.vocab_size, FLAGS.min_count, FLAGS.max_unique_chars)
    os.makedirs(os.path.dirname(os.path.abspath(FLAGS.output)), exist_ok=True)
    atomic_write_text(FLAGS.output, "\n".join(vocab) + "\n")
    print(
        f"Wrote {len(vocab):,} tokens to {FLAGS.output} in {time.time() - start:.1f} s: "
        f"{summary(vocab)}"
    )


def run() -> None:
    cli.main(define_flags, command, required=("input", "output"), output_files=("output",))


if __name__ == "__main__":
    run()
