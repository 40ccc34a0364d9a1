"""WordPiece vocabulary files: loading, special-token ids, fingerprint.

Shared by data_prep (offline) and the input pipeline so both agree on ids.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib

import numpy as np

SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")
CONTINUATION_PREFIX = "##"


@dataclasses.dataclass(frozen=True)
class Vocab:
    """A WordPiece vocabulary read from a one-token-per-line file.

    Example:
        >>> vocab = Vocab.load("vocab.txt")  # doctest: +SKIP
        >>> vocab.mask_id, vocab.size  # doctest: +SKIP
        (103, 30522)
    """

    path: str
    tokens: tuple[str, ...]
    sha256: str

    @property
    def uncased(self) -> bool:
        """An uncased WordPiece vocab has no A-Z outside [SPECIAL] tokens. (Not
        str.isupper: the standard uncased vocab holds "ℝ", which counts as upper.)"""
        return not any(
            any("A" <= c <= "Z" for c in token)
            for token in self.tokens
            if not (token.startswith("[") and token.endswith("]"))
        )

    @classmethod
    def load(cls, path: str) -> Vocab:
        """Reads `path`; raises ValueError naming the file if a special token is missing."""
        try:
            with open(path, "rb") as f:
                data = f.read()
        except OSError as e:
            raise ValueError(f"Cannot read vocab file {path}: {e.strerror}") from e
        return cls.from_bytes(data, path)

    @classmethod
    def from_bytes(cls, data: bytes, path: str) -> Vocab:
        """Parses a vocab file's bytes read from `path` (named in errors)."""
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as e:
            raise ValueError(f"Vocab file {path} is not valid UTF-8 (byte {e.start})") from e
        tokens = tuple(line.rstrip("\r") for line in text.split("\n"))
        if tokens and tokens[-1] == "":
            tokens = tokens[:-1]
        vocab = cls(path=path, tokens=tokens, sha256=hashlib.sha256(data).hexdigest())
        index = vocab.index
        missing = [t for t in SPECIAL_TOKENS if t not in index]
        if missing:
            raise ValueError(
                f"Vocab file {path} lacks special token(s) {', '.join(missing)}; "
                f"a BERT/ELECTRA vocab needs all of {', '.join(SPECIAL_TOKENS)}"
            )
        if len(index) != len(tokens):
            seen: set[str] = set()
            dup = next(t for t in tokens if t in seen or seen.add(t))
            raise ValueError(f"Vocab file {path} lists token {dup!r} more than once")
        return vocab

    @property
    def size(self) -> int:
        return len(self.tokens)

    @functools.cached_property
    def index(self) -> dict[str, int]:
        return {t: i for i, t in enumerate(self.tokens)}

    @functools.cached_property
    def special_ids(self) -> dict[str, int]:
        index = self.index
        return {t.strip("[]").lower(): index[t] for t in SPECIAL_TOKENS}

    @property
    def pad_id(self) -> int:
        return self.special_ids["pad"]

    @property
    def cls_id(self) -> int:
        return self.special_ids["cls"]

    @property
    def sep_id(self) -> int:
        return self.special_ids["sep"]

    @property
    def mask_id(self) -> int:
        return self.special_ids["mask"]

    def continuation_table(self) -> np.ndarray:
        """Bool [size]: True where the token continues a word ("##ing")."""
        return np.array([t.startswith(CONTINUATION_PREFIX) for t in self.tokens], dtype=bool)

    def random_replacement_ids(self) -> np.ndarray:
        """Ids BERT-style masking may substitute: all but special and [unused*] tokens."""
        special = set(SPECIAL_TOKENS)
        ok = [
            i
            for i, t in enumerate(self.tokens)
            if t not in special and not (t.startswith("[unused") and t.endswith("]"))
        ]
        return np.array(ok, dtype=np.int32)
