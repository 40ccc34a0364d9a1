"""Property-based tests (hypothesis) of the text paths: tokenizers agree on any
Unicode, data prep survives any bytes, packing loses and invents no token."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest
import tensorflow as tf
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from data_prep.build_pretraining_data import Settings, build
from data_prep.packing import SequencePacker
from data_prep.text_source import InputError, ReplacementCounter
from electra_tf.serving.saved_model import PRETRAINED, ServingModule
from electra_tf.tokenizer import WordPieceTokenizer

# Whole Unicode but surrogates (not encodable in UTF-8, so not text) and code
# points unassigned in this Python's Unicode database (the tokenizers' ICU is a
# newer Unicode, which assigns some of them).
_CHARS = st.characters(blacklist_categories=("Cs", "Cn"))
unicode_text = st.text(alphabet=_CHARS, min_size=0, max_size=60)
# Text that looks like text: words, punctuation, accents, CJK, emoji, spaces.
wordy_text = st.lists(
    st.one_of(
        st.sampled_from(
            ["the", "Movie", "naïve", "CAFÉ", "don't", "e-mail", "東京", "😀", "...", "ß", "İ"]
        ),
        st.text(alphabet=_CHARS, min_size=1, max_size=8),
    ),
    max_size=12,
).map(" ".join)

_HYPOTHESIS = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@pytest.fixture(scope="module")
def tokenizers(vocab_path):
    graph = ServingModule(None, {"kind": PRETRAINED, "lower_case": True}, vocab_path, 512)
    return graph, WordPieceTokenizer(vocab_path)


@_HYPOTHESIS
@given(texts=st.lists(st.one_of(unicode_text, wordy_text), min_size=1, max_size=8))
def test_the_in_graph_and_python_tokenizers_agree_on_any_unicode(tokenizers, texts):
    graph, python = tokenizers
    inputs = graph._tokenize(tf.constant(texts))[0]  # what the SavedModel's `tokenize` runs
    ids, mask = inputs["input_ids"].numpy(), inputs["input_mask"].numpy()
    for row, text in enumerate(texts):
        expected = python.encode(text, max_length=512)
        n = int(mask[row].sum())
        assert ids[row, :n].tolist() == expected["input_ids"][:n], repr(text)
        assert sum(expected["input_mask"]) == n, repr(text)


ascii_text = st.text(alphabet=st.characters(max_codepoint=127), max_size=80)


@_HYPOTHESIS
@given(text=st.one_of(ascii_text, wordy_text, unicode_text), lower_case=st.booleans())
def test_token_ids_fast_path_equals_the_general_path(vocab_path, text, lower_case):
    tokenizer = WordPieceTokenizer(vocab_path, lower_case=lower_case)
    assert tokenizer.split_words(text) == tokenizer._split_unicode(text), repr(text)
    words = tokenizer._split_unicode(text)
    expected = tokenizer.convert_tokens_to_ids([p for w in words for p in tokenizer.wordpieces(w)])
    assert tokenizer.token_ids(text) == expected, repr(text)
    assert tokenizer.token_ids(text) == expected, repr(text)  # now from the word cache


@settings(max_examples=300, deadline=None)
@given(data=st.binary(max_size=200))
def test_any_bytes_decode_with_every_replacement_counted(data):
    counter = ReplacementCounter()
    text = counter.decode(data)
    assert text == data.decode("utf-8", errors="replace")
    valid = data.decode("utf-8", errors="ignore")
    assert counter.count == text.count("\ufffd") - valid.count("\ufffd")
    assert (counter.count == 0) == _is_utf8(data)


def _is_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


@settings(
    max_examples=8,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    data=st.lists(
        st.one_of(st.binary(min_size=1, max_size=300), wordy_text.map(str.encode)),
        min_size=1,
        max_size=20,
    ).map(b"\n".join)
)
def test_data_prep_tokenizes_any_bytes_and_counts_the_invalid_ones(
    vocab_path, tmp_path_factory, data
):
    folder = tmp_path_factory.mktemp("bytes")
    (folder / "in.txt").write_bytes(data)
    settings = Settings(
        inputs=(str(folder / "in.txt"),),
        vocab=vocab_path,
        output_dir=str(folder / "out"),
        max_seq_length=32,
        num_shards=1,
    )
    replaced = ReplacementCounter()
    text = replaced.decode(data)
    if not WordPieceTokenizer(vocab_path).tokenize(text):
        # No bytes, or bytes with no word in them (blanks, control characters): refused.
        with pytest.raises(InputError, match=r"hold\(s\) no (text|words)"):
            build(settings)
        return
    info = build(settings)
    totals = info["totals"]
    assert totals["invalid_utf8_replaced"] == replaced.count
    shard = next((folder / "out").glob("*.tfrecord"))
    written = sum(1 for _ in tf.data.TFRecordDataset(str(shard)))
    assert written == totals["examples"]
    assert totals["tokens_written"] == totals["tokens_read"]  # packing carries, never drops
    saved = json.loads((folder / "out" / "dataset_info.json").read_text())
    assert saved["totals"] == totals


def _numbered_documents(lengths: list[list[int]]) -> list[list[np.ndarray]]:
    """Documents of sentences of the given lengths; every token a distinct id, in text order."""
    counter = iter(range(1000, 10**6))
    return [[np.array([next(counter) for _ in range(n)], np.int32) for n in doc] for doc in lengths]


@settings(max_examples=300, deadline=None)
@given(
    lengths=st.lists(st.lists(st.integers(0, 70), max_size=8), min_size=1, max_size=6),
    max_len=st.integers(8, 64),
    seed=st.integers(0, 2**16),
)
def test_packing_never_drops_or_duplicates_a_token(lengths, max_len, seed):
    documents = _numbered_documents(lengths)
    packer = SequencePacker(max_len, cls_id=101, sep_id=102, rng=random.Random(seed))
    for document in documents:
        sequences = packer.pack_document(document)
        tokens = []
        for ids, len_a in sequences:
            assert len(ids) <= max_len and ids[0] == 101 and ids[len_a - 1] == 102
            assert ids[-1] == 102
            tokens.extend(t for t in ids.tolist() if t not in (101, 102))
        expected = [t for sentence in document for t in sentence.tolist()]
        # As in the reference's packer, a short sentence after segment B has
        # started may still join A, so order can change; the tokens may not.
        assert sorted(tokens) == expected


@settings(max_examples=200, deadline=None)
@given(
    lengths=st.lists(st.lists(st.integers(0, 40), max_size=5), min_size=1, max_size=8),
    max_len=st.integers(8, 64),
    seed=st.integers(0, 2**16),
)
def test_packing_across_documents_keeps_every_token_and_marks_each_boundary(lengths, max_len, seed):
    documents = _numbered_documents(lengths)
    packer = SequencePacker(max_len, cls_id=101, sep_id=102, rng=random.Random(seed))
    sequences, separators = packer.pack_documents(documents)
    non_empty = sum(1 for d in documents if any(len(s) for s in d))
    assert separators == max(non_empty - 1, 0)
    tokens, inner_seps = [], 0
    for ids, len_a in sequences:
        assert len(ids) <= max_len and ids[0] == 101 and ids[-1] == 102
        body = [t for i, t in enumerate(ids.tolist()) if i not in (0, len_a - 1, len(ids) - 1)]
        inner_seps += body.count(102)
        tokens.extend(t for t in body if t != 102)
    assert inner_seps == separators
    expected = [t for d in documents for s in d for t in s.tolist()]
    assert sorted(tokens) == expected
