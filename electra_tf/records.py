"""The pre-training TFRecord schema, its fast encoder, and dataset_info.json.

Schema (BERT / Model Garden compatible): int64 `input_ids`, `input_mask`,
`segment_ids` [max_seq_length]; optional int64 `masked_lm_positions`,
`masked_lm_ids` and float `masked_lm_weights` [max_predictions_per_seq].
Records without the masked_lm_* features are masked dynamically at train time.
"""

from __future__ import annotations

import gzip
import json
import os
import struct
from typing import Any

import google_crc32c
import numpy as np

SEQUENCE_FEATURES = ("input_ids", "input_mask", "segment_ids")
MASKED_LM_FEATURES = ("masked_lm_positions", "masked_lm_ids", "masked_lm_weights")
DATASET_INFO = "dataset_info.json"
SCHEMA_VERSION = 1
# Fine-tuning records: the info file beside them, and the label id of the
# positions a tagging loss ignores (word-piece continuations, padding).
FINETUNE_INFO = "finetune_info.json"
IGNORE_LABEL = -1


# --- A tf.train.Example encoder ---------------------------------------------
# Building tf.train.Example protos in Python costs ~60 µs a record and is the
# bottleneck of data_prep (docs/pitfalls.md). The wire format of an Example with
# packed int64/float lists is simple enough to emit directly with numpy.
# tests/test_records.py checks the bytes parse back to the same values with
# TensorFlow's own parser.


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _varint_bytes(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Varint-encodes non-negative ints; returns (bytes uint8, bytes per value)."""
    v = np.asarray(values).reshape(-1).astype(np.uint64)
    width = 1
    top = int(v.max()) if v.size else 0
    while top >= 1 << (7 * width):
        width += 1
    nbytes = np.ones(v.shape, np.int64)
    for k in range(1, width):
        nbytes += v >= np.uint64(1 << (7 * k))
    # Byte j of a value is (v >> 7j) & 0x7f, high bit set unless it is the last.
    j = np.arange(width, dtype=np.uint64)
    table = (v[:, None] >> (np.uint64(7) * j)) & np.uint64(0x7F)
    table |= (j[None, :].astype(np.int64) < nbytes[:, None] - 1).astype(np.uint64) << np.uint64(7)
    keep = j[None, :].astype(np.int64) < nbytes[:, None]
    return table.astype(np.uint8)[keep], nbytes


# Varints of small lengths, precomputed: length prefixes dominate the cost.
_SMALL_VARINTS = [_varint(i) for i in range(1 << 14)]


def _len_prefix(n: int) -> bytes:
    return _SMALL_VARINTS[n] if n < (1 << 14) else _varint(n)


def _field(number: int, payload: bytes) -> bytes:
    """A length-delimited field (wire type 2); field numbers here are < 16."""
    return _SMALL_VARINTS[(number << 3) | 2] + _len_prefix(len(payload)) + payload


def _packed_rows(name: str, values: np.ndarray) -> list[bytes]:
    """The serialised map entry of feature `name` for each row of `values`."""
    values = np.asarray(values)
    rows = values.shape[0]
    if values.dtype.kind == "f":
        data = np.ascontiguousarray(values, dtype="<f4").reshape(rows, -1)
        payloads = [r.tobytes() for r in data]
        list_field = 2  # Feature.float_list
    else:
        if values.size and values.min() < 0:
            raise ValueError(f"feature {name}: the encoder writes non-negative int64 only")
        flat, nbytes = _varint_bytes(values)
        ends = np.cumsum(nbytes.reshape(rows, -1).sum(axis=1))
        raw = flat.tobytes()
        payloads = [raw[a:b] for a, b in zip(np.concatenate([[0], ends[:-1]]), ends)]
        list_field = 3  # Feature.int64_list
    key = _field(1, name.encode("utf-8"))
    list_tag = _SMALL_VARINTS[(list_field << 3) | 2]
    value_tag = _SMALL_VARINTS[(1 << 3) | 2]
    entry_tag = _SMALL_VARINTS[(1 << 3) | 2]
    feature_tag = _SMALL_VARINTS[(2 << 3) | 2]
    out = []
    for payload in payloads:
        # map entry {key, value: Feature{list_field: List{value (1, packed)}}}
        inner = value_tag + _len_prefix(len(payload)) + payload
        feature = list_tag + _len_prefix(len(inner)) + inner
        entry = key + feature_tag + _len_prefix(len(feature)) + feature
        out.append(entry_tag + _len_prefix(len(entry)) + entry)
    return out


def encode_examples(batch: dict[str, np.ndarray]) -> list[bytes]:
    """Serialises a batch of examples as tf.train.Example bytes.

    Args:
        batch: Feature name -> array [num_examples, width]; integer arrays
            become int64 lists (non-negative values), float arrays float lists.

    Returns:
        One serialised `tf.train.Example` per row.

    Example:
        >>> data = encode_examples({"input_ids": np.array([[101, 7, 102]])})
        >>> tf.train.Example.FromString(data[0])  # doctest: +SKIP
    """
    columns = [_packed_rows(name, batch[name]) for name in sorted(batch)]
    return [_field(1, b"".join(entries)) for entries in zip(*columns)]


# --- A TFRecord file writer ------------------------------------------------------
# Data prep writes shards without TensorFlow: importing it costs a process
# ~6 s, more than tokenizing a 400k-word corpus. The framing is TFRecord's
# (tensorflow/core/lib/io/record_writer.cc); tests/test_records.py reads the
# files back with tf.data.


def _masked_crc(data: bytes) -> bytes:
    crc = google_crc32c.value(data)
    return struct.pack("<I", (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF)


class TFRecordWriter:
    """Writes records in TFRecord framing, optionally gzip-compressed.

    Args:
        path: A local file path (created or truncated).
        compression: `"gzip"` or `None`, as tf.io.TFRecordOptions' GZIP / "".

    Example:
        >>> import tempfile
        >>> path = tempfile.mkdtemp() + "/a.tfrecord"
        >>> with TFRecordWriter(path) as w:
        ...     w.write(b"one")
        >>> os.path.getsize(path)  # 8 length + 4 crc + 3 data + 4 crc
        19
    """

    def __init__(self, path: str, compression: str | None = None):
        if compression not in (None, "gzip"):
            raise ValueError(f"compression must be 'gzip' or None, got {compression!r}")
        self._raw = open(path, "wb")  # noqa: SIM115 - closed by close() / __exit__
        # No name or time in the gzip header: the same records give the same bytes.
        self._file: Any = (
            gzip.GzipFile(filename="", mode="wb", compresslevel=6, fileobj=self._raw, mtime=0)
            if compression
            else self._raw
        )

    def write(self, record: bytes) -> None:
        header = struct.pack("<Q", len(record))
        self._file.write(header + _masked_crc(header) + record + _masked_crc(record))

    def close(self) -> None:
        self._file.close()
        self._raw.close()

    def __enter__(self) -> TFRecordWriter:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


# --- dataset_info.json --------------------------------------------------------


def read_dataset_info(data_dir: str) -> dict[str, Any] | None:
    path = os.path.join(data_dir, DATASET_INFO)
    if not os.path.exists(path):
        return None
    with open(path, encoding="utf-8") as f:
        try:
            return json.load(f)
        except json.JSONDecodeError as e:
            raise ValueError(f"{path} is not valid JSON: {e}") from e


def check_dataset_info(
    info: dict[str, Any], source: str, *, vocab_size: int, max_seq_length: int
) -> None:
    """Refuses data made for another model, naming the field that disagrees."""
    expected = {"vocab_size": vocab_size, "max_seq_length": max_seq_length}
    for field, want in expected.items():
        got = info.get(field)
        if got is None:
            raise ValueError(f"{source}: dataset_info.json has no field {field!r}")
        if got != want:
            raise ValueError(
                f"{source}: dataset_info.json field {field}={got} but the training run "
                f"uses {field}={want}"
            )
