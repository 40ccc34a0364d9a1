"""The pure-Python WordPiece tokenizer gives tf-text FastBertTokenizer's ids."""

from __future__ import annotations

import gzip

import pytest

from electra_tf.tokenizer import WordPieceTokenizer, truncate_pair

EDGE_CASES = [
    "",
    "   ",
    "héllo wörld ñ Ǆ ß İstanbul",
    "\x00bad\x01 \ufffd ok",
    "中文字符 and emoji 😀",
    "a" * 120,
    "я" * 50 + " " + "я" * 51 + " " + "é" * 51,  # 100, 102 and (after stripping) 51 bytes
    "naïve café — “quotes” … 9 ½ weeks",
    "\u200bzero\u200dwidth",
    "Ⅻ ﬁ ㈱ ＡＢＣ",
    "don't stop-believing!!! $5.00 @user #tag http://x.y/z?q=1",
    "".join(chr(i) for i in range(128)),  # every ASCII character, controls included
    "Tab\tsep\x1fUNIT\x7fdel\x0bvt",
]


@pytest.fixture(scope="module")
def lines(shared_data) -> list[str]:
    with open(shared_data / "sst2_like" / "train.tsv", encoding="utf-8") as f:
        texts = [line.split("\t")[0] for line in f][1:2001]
    with gzip.open(shared_data / "corpus" / "shakespeare.txt.gz", "rt", encoding="utf-8") as f:
        texts += [next(f).strip() for _ in range(1000)]
    with open(shared_data / "ner" / "dev.conll", encoding="utf-8") as f:
        texts += [line.split("\t")[0] for line in f if line.strip()][:1000]
    return texts + EDGE_CASES


@pytest.mark.parametrize("lower_case", [True, False])
def test_matches_fast_bert_tokenizer(vocab_path, lines, lower_case):
    import tensorflow as tf
    import tensorflow_text as tf_text

    with open(vocab_path, encoding="utf-8") as f:
        vocab = [line.rstrip("\n") for line in f]
    fast = tf_text.FastBertTokenizer(
        vocab, token_out_type=tf.int64, lower_case_nfd_strip_accents=lower_case
    )
    expected = fast.tokenize(tf.constant(lines)).to_list()
    tokenizer = WordPieceTokenizer(vocab_path, lower_case=lower_case)
    got = [tokenizer.convert_tokens_to_ids(tokenizer.tokenize(line)) for line in lines]
    mismatches = [(line, g, e) for line, g, e in zip(lines, got, expected) if g != e]
    assert not mismatches, mismatches[:3]
    # The fast path data prep uses, twice (the second time from its word cache).
    for _ in range(2):
        got = [tokenizer.token_ids(line) for line in lines]
        mismatches = [(line, g, e) for line, g, e in zip(lines, got, expected) if g != e]
        assert not mismatches, mismatches[:3]


def test_wordpiece_and_unknown(vocab_path):
    tokenizer = WordPieceTokenizer(vocab_path)
    assert tokenizer.tokenize("Unaffable!") == ["una", "##ffa", "##ble", "!"]
    assert tokenizer.tokenize("x" * 101) == ["[UNK]"]


def test_encode_pair_layout(vocab_path):
    tokenizer = WordPieceTokenizer(vocab_path)
    encoded = tokenizer.encode("a good movie", "it was fun", max_length=12)
    ids = tokenizer.vocab.index
    assert encoded["input_ids"][:5] == [
        ids["[CLS]"],
        ids["a"],
        ids["good"],
        ids["movie"],
        ids["[SEP]"],
    ]
    assert encoded["segment_ids"] == [0] * 5 + [1] * 4 + [0] * 3
    assert encoded["input_mask"] == [1] * 9 + [0] * 3
    assert len(encoded["input_ids"]) == 12


def test_truncation_is_longest_first():
    a, b = truncate_pair(list("abcdefgh"), list("xyz"), max_length=10)
    assert (a, b) == (list("abcd"), list("xyz"))
    a, b = truncate_pair(list("abcd"), list("wxyz"), max_length=9)  # tie: b loses first
    assert (a, b) == (list("abc"), list("wxy"))
    assert truncate_pair(list("abcdef"), None, max_length=5) == (list("abc"), None)
