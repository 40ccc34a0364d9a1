"""Streaming raw text: globs, compressed files, chunks, documents and sentences.

Corpora arrive as one document per file, one document per line, or one giant
line (11.8 MB in ../shared/data/corpus). Nothing here holds a whole file:
inputs are cut into chunks of about `chunk_bytes` at line or word boundaries
in one cheap pass, and workers read their chunks back by (file, offset,
length). Chunk boundaries depend only on the input bytes, which keeps the
output independent of the number of workers.
"""

from __future__ import annotations

import bz2
import codecs
import dataclasses
import gzip
import io
import os
import re
import zlib
from collections.abc import Iterator

from data_prep import storage

DEFAULT_CHUNK_BYTES = 256 << 10
# Sentences longer than this are cut at whitespace so a single sentence never
# dwarfs a sequence (the tokenizer would otherwise see megabyte "sentences").
MAX_SENTENCE_CHARS = 2000

_SENTENCE_END = re.compile(r"(?<=[.!?])[\"')\]]*\s+")
_BLANK_LINE = re.compile(r"\n[ \t\r\f\v]*\n")


class InputError(ValueError):
    """Bad input: the message names the file, glob or flag."""


def expand_globs(spec: str, flag: str = "--input") -> list[str]:
    """Expands comma-separated globs to a sorted, de-duplicated file list.

    Globs with a scheme (`gs://...`) are matched by Apache Beam's filesystems.
    """
    patterns = [p.strip() for p in spec.split(",") if p.strip()]
    if not patterns:
        raise InputError(f"{flag} is empty")
    files: list[str] = []
    for pattern in patterns:
        try:
            matched = storage.match(pattern)
        except Exception as e:  # a remote filesystem's own error (permissions, bucket)
            raise InputError(f"{flag}: cannot list {pattern!r}: {e}") from e
        if not matched:
            raise InputError(f"{flag}: glob {pattern!r} matches no file")
        files.extend(matched)
    seen: set[str] = set()
    unique = [f for f in files if not (f in seen or seen.add(f))]
    for path in unique:
        if not storage.is_remote(path) and not os.access(path, os.R_OK):
            raise InputError(f"{flag}: file {path} is not readable")
    return unique


def open_binary(path: str) -> io.BufferedIOBase:
    """Opens plain, .gz or .bz2 files (local or remote) as a decompressed binary stream."""
    try:
        if storage.is_remote(path):
            from apache_beam.io.filesystems import FileSystems

            return FileSystems.open(path)  # decompresses .gz/.bz2 by extension
        if path.endswith(".gz"):
            return gzip.open(path, "rb")
        if path.endswith(".bz2"):
            return bz2.open(path, "rb")
        return open(path, "rb")
    except OSError as e:
        raise InputError(f"Cannot open input file {path}: {e.strerror or e}") from e


@dataclasses.dataclass(frozen=True)
class Chunk:
    """A byte range of one decompressed input file."""

    index: int
    file_index: int
    path: str
    offset: int
    length: int


def _cut_point(block: bytes) -> int:
    """Where to end a chunk inside `block`: after a newline, else a space."""
    half = len(block) // 2
    for sep in (b"\n\n", b"\n", b". ", b" "):
        pos = block.rfind(sep, half)
        if pos >= 0:
            return pos + len(sep)
    # No whitespace in half a chunk: cut on a UTF-8 character boundary.
    end = len(block)
    while end > half and (block[end - 1] & 0xC0) == 0x80:
        end -= 1
    if end > half and block[end - 1] >= 0xC0:
        end -= 1
    return end


def plan_chunks(paths: list[str], chunk_bytes: int = DEFAULT_CHUNK_BYTES) -> list[Chunk]:
    """One streaming pass over all inputs to fix deterministic chunk boundaries."""
    chunks: list[Chunk] = []
    for file_index, path in enumerate(paths):
        chunks.extend(number_chunks(plan_file_chunks(path, file_index, chunk_bytes), len(chunks)))
    return chunks


def number_chunks(file_chunks: list[Chunk], first_index: int) -> list[Chunk]:
    """One file's chunks with their global indices, the first being `first_index`."""
    return [dataclasses.replace(c, index=first_index + i) for i, c in enumerate(file_chunks)]


def plan_file_chunks(path: str, file_index: int, chunk_bytes: int) -> list[Chunk]:
    """One file's chunk boundaries (they depend on its bytes alone); indices from 0."""
    chunks: list[Chunk] = []
    offset = 0
    carry = b""
    try:
        with open_binary(path) as f:
            while True:
                block = f.read(chunk_bytes - len(carry))
                data = carry + block
                if not block:
                    if data:
                        chunks.append(Chunk(len(chunks), file_index, path, offset, len(data)))
                    break
                cut = _cut_point(data) if len(data) >= chunk_bytes else len(data)
                if len(data) < chunk_bytes:
                    carry = data
                    continue
                chunks.append(Chunk(len(chunks), file_index, path, offset, cut))
                offset += cut
                carry = data[cut:]
    except (OSError, EOFError, gzip.BadGzipFile, zlib.error) as e:
        raise InputError(f"Cannot read input file {path}: {e}") from e
    return chunks


class ReplacementCounter:
    """Decodes UTF-8, replacing invalid bytes with U+FFFD and counting them."""

    def __init__(self) -> None:
        self.count = 0

    def decode(self, data: bytes) -> str:
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:
            pass
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        text = decoder.decode(data, final=True)
        valid = data.decode("utf-8", errors="ignore")
        # U+FFFD already present in valid text is not a replacement.
        self.count += text.count("\ufffd") - valid.count("\ufffd")
        return text


class ChunkReader:
    """Reads chunks back in order, keeping the current file open between them."""

    def __init__(self) -> None:
        self._path: str | None = None
        self._file: io.BufferedIOBase | None = None
        self._pos = 0
        self.utf8 = ReplacementCounter()

    def read(self, chunk: Chunk) -> str:
        if self._path != chunk.path or self._pos > chunk.offset:
            self.close()
            self._file = open_binary(chunk.path)
            self._path = chunk.path
            self._pos = 0
        assert self._file is not None
        try:
            if self._pos != chunk.offset:
                self._file.seek(chunk.offset)
            data = self._file.read(chunk.length)
        except (OSError, EOFError, zlib.error) as e:
            raise InputError(f"Cannot read input file {chunk.path}: {e}") from e
        if len(data) != chunk.length:
            raise InputError(f"Input file {chunk.path} changed while being read")
        self._pos = chunk.offset + chunk.length
        return self.utf8.decode(data)

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
        self._file = None
        self._path = None


def split_sentences(line: str) -> list[str]:
    """Splits a line at sentence ends; over-long pieces are cut at whitespace."""
    out: list[str] = []
    for sentence in _SENTENCE_END.split(line):
        sentence = sentence.strip()
        while len(sentence) > MAX_SENTENCE_CHARS:
            cut = sentence.rfind(" ", MAX_SENTENCE_CHARS // 2, MAX_SENTENCE_CHARS)
            if cut < 0:
                cut = MAX_SENTENCE_CHARS
            out.append(sentence[:cut].strip())
            sentence = sentence[cut:].strip()
        if sentence:
            out.append(sentence)
    return out


def documents(text: str) -> Iterator[list[str]]:
    """Yields documents (lists of sentences); a blank line ends a document."""
    for block in _BLANK_LINE.split(text):
        sentences: list[str] = []
        for line in block.split("\n"):
            if line.strip():
                sentences.extend(split_sentences(line))
        if sentences:
            yield sentences
