"""A pure-Python BERT WordPiece tokenizer: data prep and the device side.

It needs neither TensorFlow nor tf-text, so an app that runs the TFLite
classifier can tokenize with it (copy this one file and the vocab). It gives
the same ids as the in-graph `tf_text.FastBertTokenizer` the exported
SavedModel uses (tested on real text), so training, serving and the device
agree.
"""

from __future__ import annotations

import re
import unicodedata

from electra_tf.vocab import CONTINUATION_PREFIX, Vocab

# Longer words become [UNK]. tf-text counts UTF-8 bytes (BERT's Python
# tokenizer counted characters): 51 Cyrillic letters are one [UNK] there.
MAX_BYTES_PER_WORD = 100
# token_ids' word cache stops growing here (~50 MB): flat memory on any corpus,
# and by Zipf's law the first quarter-million distinct words cover most tokens.
_CACHED_WORDS = 1 << 18

# Basic tokenization of ASCII text: runs of letters and digits, and each other
# printable character (BERT counts every ASCII symbol as punctuation) on its
# own; whitespace and control characters only separate. Lower-casing ASCII
# needs no Unicode normalisation. The tests check it against the general path
# (tests/test_properties.py) and tf-text (tests/test_tokenizer.py).
_ASCII_WORDS = re.compile(r"[A-Za-z0-9]+|[!-/:-@\[-`{-~]")


def _is_control(char: str) -> bool:
    if char in "\t\n\r":
        return False
    return unicodedata.category(char) in ("Cc", "Cf")


# Unicode's Default_Ignorable_Code_Point ranges (DerivedCoreProperties.txt).
# ICU's NFKC_Casefold, which tf-text's lower_case_nfd_strip_accents applies,
# deletes these; Python's NFKC + casefold keeps them.
_DEFAULT_IGNORABLE = (
    (0x00AD, 0x00AD),
    (0x034F, 0x034F),
    (0x061C, 0x061C),
    (0x115F, 0x1160),
    (0x17B4, 0x17B5),
    (0x180B, 0x180F),
    (0x200B, 0x200F),
    (0x202A, 0x202E),
    (0x2060, 0x206F),
    (0x3164, 0x3164),
    (0xFE00, 0xFE0F),
    (0xFEFF, 0xFEFF),
    (0xFFA0, 0xFFA0),
    (0xFFF0, 0xFFF8),
    (0x1BCA0, 0x1BCA3),
    (0x1D173, 0x1D17A),
    (0xE0000, 0xE0FFF),
)


def _is_default_ignorable(cp: int) -> bool:
    return any(lo <= cp <= hi for lo, hi in _DEFAULT_IGNORABLE)


def _is_punctuation(char: str) -> bool:
    cp = ord(char)
    # BERT treats every non-alphanumeric ASCII symbol as punctuation ("$", "^", "`").
    if 33 <= cp <= 47 or 58 <= cp <= 64 or 91 <= cp <= 96 or 123 <= cp <= 126:
        return True
    return unicodedata.category(char).startswith("P")


def _is_cjk(cp: int) -> bool:
    return (
        0x4E00 <= cp <= 0x9FFF
        or 0x3400 <= cp <= 0x4DBF
        or 0x20000 <= cp <= 0x2A6DF
        or 0x2A700 <= cp <= 0x2B73F
        or 0x2B740 <= cp <= 0x2B81F
        or 0x2B820 <= cp <= 0x2CEAF
        or 0xF900 <= cp <= 0xFAFF
        or 0x2F800 <= cp <= 0x2FA1F
    )


class WordPieceTokenizer:
    """BERT's basic + WordPiece tokenization with a fixed vocabulary.

    Args:
        vocab: A `Vocab` or the path of a vocab file.
        lower_case: Lower-case and strip accents first (uncased vocabs).

    Example:
        >>> tok = WordPieceTokenizer("vocab.txt")  # doctest: +SKIP
        >>> tok.tokenize("Unaffable!")  # doctest: +SKIP
        ['una', '##ffa', '##ble', '!']
        >>> tok.encode("a movie", max_length=8)["input_ids"]  # doctest: +SKIP
        [101, 1037, 3185, 102, 0, 0, 0, 0]
    """

    def __init__(self, vocab: Vocab | str, lower_case: bool = True):
        self.vocab = vocab if isinstance(vocab, Vocab) else Vocab.load(vocab)
        self.lower_case = lower_case
        self._index = self.vocab.index
        self._unk = "[UNK]"
        self._cache: dict[str, list[int]] = {}

    def split_words(self, text: str) -> list[str]:
        """Basic tokenization: clean, normalise, split on whitespace and punctuation."""
        if text.isascii():  # most text: no normalisation, one regex
            return _ASCII_WORDS.findall(text.lower() if self.lower_case else text)
        return self._split_unicode(text)

    def _split_unicode(self, text: str) -> list[str]:
        """`split_words` for any text (the ASCII path's reference)."""
        if self.lower_case:
            # tf-text's lower_case_nfd_strip_accents is ICU's NFKC case folding,
            # then NFD with the accents dropped: "½" -> "1⁄2", "ß" -> "ss".
            text = "".join(c for c in text if not _is_default_ignorable(ord(c)))
            text = unicodedata.normalize("NFD", unicodedata.normalize("NFKC", text).casefold())
            text = "".join(c for c in text if unicodedata.category(c) != "Mn")
        chars = []
        for char in text:
            cp = ord(char)
            # tf-text ends a word at a control or format character (BERT's
            # Python tokenizer deleted them, joining "a\x1fb" into one word).
            if char.isspace() or _is_control(char):
                chars.append(" ")
            elif _is_cjk(cp):
                chars.extend((" ", char, " "))
            else:
                chars.append(char)
        words = []
        for word in "".join(chars).split():
            start = 0
            for i, char in enumerate(word):
                if _is_punctuation(char):
                    if i > start:
                        words.append(word[start:i])
                    words.append(char)
                    start = i + 1
            if start < len(word):
                words.append(word[start:])
        return words

    def wordpieces(self, word: str) -> list[str]:
        """Greedy longest-match-first WordPiece split of one basic word."""
        if len(word.encode("utf-8")) > MAX_BYTES_PER_WORD:
            return [self._unk]
        pieces, start = [], 0
        while start < len(word):
            end = len(word)
            while end > start:
                piece = word[start:end] if start == 0 else CONTINUATION_PREFIX + word[start:end]
                if piece in self._index:
                    break
                end -= 1
            if end == start:
                return [self._unk]
            pieces.append(piece)
            start = end
        return pieces

    def token_ids(self, text: str) -> list[int]:
        """The word-piece ids of `text` (no [CLS]/[SEP]); each distinct word is
        split into pieces once (data prep's hot loop)."""
        cache = self._cache
        out: list[int] = []
        for word in self.split_words(text):
            ids = cache.get(word)
            if ids is None:
                ids = self.convert_tokens_to_ids(self.wordpieces(word))
                if len(cache) < _CACHED_WORDS:
                    cache[word] = ids
            out += ids
        return out

    def tokenize(self, text: str) -> list[str]:
        return [piece for word in self.split_words(text) for piece in self.wordpieces(word)]

    def convert_tokens_to_ids(self, tokens: list[str]) -> list[int]:
        return [self._index.get(t, self._index[self._unk]) for t in tokens]

    def encode(self, text: str, text_b: str | None = None, max_length: int = 128) -> dict:
        """`[CLS] a [SEP] (b [SEP])`, truncated longest-first, padded to `max_length`."""
        a = self.tokenize(text)
        b = self.tokenize(text_b) if text_b is not None else None
        a, b = truncate_pair(a, b, max_length)
        tokens = ["[CLS]", *a, "[SEP]"]
        segments = [0] * len(tokens)
        if b is not None:
            tokens += [*b, "[SEP]"]
            segments += [1] * (len(b) + 1)
        ids = self.convert_tokens_to_ids(tokens)
        pad = max_length - len(ids)
        return {
            "input_ids": ids + [self.vocab.pad_id] * pad,
            "input_mask": [1] * len(ids) + [0] * pad,
            "segment_ids": segments + [0] * pad,
        }


def truncate_pair(a: list, b: list | None, max_length: int) -> tuple[list, list | None]:
    """Trims to fit `max_length` with the special tokens, always from the longer side.

    On a tie the second segment loses a token first, as in BERT's
    `_truncate_seq_pair` (tf-text's `ShrinkLongestTrimmer` breaks ties the
    other way; the exported SavedModel uses this rule).
    """
    if b is None:
        return a[: max(max_length - 2, 0)], None
    budget = max(max_length - 3, 0)
    a, b = list(a), list(b)
    while len(a) + len(b) > budget:
        if len(a) > len(b):
            a.pop()
        else:
            b.pop()
    return a, b
