"""Finding damaged TFRecord shards: truncation, bad checksums, empty files.

TensorFlow's TFRecord reader treats a file cut off inside a record as a clean
end of file (the records after the cut vanish without a word), and stops a
whole file at the first record whose checksum fails. This module finds both,
names the file, the record and the byte offset, and lists every readable
record so that a run that opts in (`--skip_corrupt_records`) can read past a
bad record instead of losing the rest of its file.

Cheap checks come first: `build_pretraining_data` records every shard's size
and example count in `dataset_info.json`, so a truncated, extended, empty or
foreign shard is caught from `os.stat` alone. A full scan reads each file
once (~250 MB/s here); it runs when a run opts into skipping, and to locate
the damage after the reader has reported a corrupt record.
"""

from __future__ import annotations

import dataclasses
import os
import re
import struct

import tensorflow as tf

from electra_tf.compat import tf_record_random_reader

_HEADER = 12  # uint64 length + masked crc32c of the length
_FOOTER = 4  # masked crc32c of the data


@dataclasses.dataclass
class ShardScan:
    """What one full read of a shard found.

    Attributes:
        path: The file.
        readable: Records that read back intact (uncompressed files: their
            byte offsets; GZIP files: the count of intact leading records).
        corrupt: (record index, byte offset) of each record whose data
            checksum failed; reading skips it and goes on.
        lost_bytes: Bytes at the end that no record can be read from (a cut
            inside a record, or a broken length header).
        lost_at: The byte offset (uncompressed) or record index (GZIP) where
            the lost bytes begin.
    """

    path: str
    readable: list[int] | int
    corrupt: list[tuple[int, int]]
    lost_bytes: int = 0
    lost_at: int | None = None

    @property
    def num_readable(self) -> int:
        return self.readable if isinstance(self.readable, int) else len(self.readable)

    @property
    def damaged(self) -> bool:
        return bool(self.corrupt or self.lost_bytes)

    def describe(self) -> str:
        """'<path>: record 12 (byte 3456) fails its checksum; ...' or '<path>: intact'."""
        parts = [
            f"record {index} (byte {offset}) fails its checksum" for index, offset in self.corrupt
        ]
        if self.lost_bytes:
            unit = "byte" if isinstance(self.readable, list) else "record"
            where = f"{unit} {self.lost_at}"
            parts.append(
                f"the last {self.lost_bytes} bytes (from {where}) hold no readable record "
                "(truncated or a broken record header)"
            )
        if not parts:
            parts.append("intact")
        return f"{self.path}: " + "; ".join(parts)


def scan_shard(path: str, compression: str = "") -> ShardScan:
    """Reads every record of `path` and reports what is damaged.

    Args:
        path: A TFRecord file.
        compression: "" or "GZIP".
    """
    if compression:
        return _scan_compressed(path, compression)
    size = os.path.getsize(path)
    reader = tf_record_random_reader(path)
    offsets: list[int] = []
    corrupt: list[tuple[int, int]] = []
    offset = 0
    with open(path, "rb") as raw:
        while offset < size:
            try:
                _, next_offset = reader.read(offset)
            except IndexError:  # fewer bytes left than the record claims: a cut
                break
            except tf.errors.DataLossError:
                next_offset = _next_after_bad_data(raw, reader, offset, size)
                if next_offset is None:
                    break
                corrupt.append((len(offsets) + len(corrupt), offset))
                offset = next_offset
                continue
            offsets.append(offset)
            offset = next_offset
    lost = size - offset
    return ShardScan(path, offsets, corrupt, lost, offset if lost else None)


def _next_after_bad_data(raw, reader, offset: int, size: int) -> int | None:
    """The next record's offset when only the data of the record at `offset`
    is bad (its length still frames the file); None when framing is lost."""
    raw.seek(offset)
    header = raw.read(8)
    if len(header) < 8:
        return None
    (length,) = struct.unpack("<Q", header)
    candidate = offset + _HEADER + length + _FOOTER
    if candidate > size:
        return None
    if candidate == size:
        return candidate
    try:
        reader.read(candidate)
    except (IndexError, tf.errors.DataLossError):
        return None
    return candidate


def _scan_compressed(path: str, compression: str) -> ShardScan:
    count = 0
    try:
        for _ in tf.data.TFRecordDataset(path, compression_type=compression):
            count += 1
    except tf.errors.DataLossError:
        # A compressed stream cannot be re-entered after damage: the rest is lost.
        return ShardScan(path, count, [], max(1, os.path.getsize(path)), count)
    return ShardScan(path, count, [])


_SHARD_NAME = re.compile(r"^pretrain-(\d{5})-of-(\d{5})\.tfrecord(\.gz)?$")


def check_complete(files: list[str], infos: dict[str, dict | None], flag: str) -> list[str]:
    """Shard sets whose data prep did not finish, one message per directory.

    `data_prep.build_pretraining_data` writes `pretrain-<i>-of-<N>` shards,
    then `dataset_info.json` last: a directory of such shards without it is
    an interrupted build (however many shards it has), and one whose
    dataset_info.json lists a shard that is not on disk has lost files.
    Other files (BERT or Model Garden records) are not checked here.
    """
    problems = []
    for directory in dict.fromkeys(os.path.dirname(os.path.abspath(f)) for f in files):
        info = infos.get(directory)
        present = sorted(n for n in os.listdir(directory) if _SHARD_NAME.match(n))
        if info is None and present:
            total = int(_SHARD_NAME.match(present[0]).group(2))
            problems.append(
                f"{flag}: {directory} is an incomplete shard set: {len(present)} of {total} "
                "shards and no dataset_info.json, so its data prep did not finish (not "
                "damage). Rerun the same data_prep command to finish it."
            )
        elif info and "shards" in info:
            missing = [s["file"] for s in info["shards"] if s["file"] not in present]
            if missing:
                problems.append(
                    f"{flag}: {directory} is an incomplete shard set: dataset_info.json lists "
                    f"{len(info['shards'])} shards and {len(missing)} are missing "
                    f"({', '.join(missing[:3])}{', ...' if len(missing) > 3 else ''})"
                )
    return problems


def check_listed(
    files: list[str], infos: dict[str, dict | None], flag: str
) -> tuple[list[str], list[str]]:
    """Problems found from file sizes alone, against each directory's dataset_info.

    Returns (foreign, damaged) messages: a shard its directory's dataset_info
    does not list is foreign (another build's file); a size other than the
    recorded one (truncated, or appended to) or a shard with no records is
    damaged.
    """
    foreign, damaged = [], []
    for path in files:
        info = infos.get(os.path.dirname(os.path.abspath(path)))
        if not info or "shards" not in info:
            continue
        entry = {s["file"]: s for s in info["shards"]}.get(os.path.basename(path))
        if entry is None:
            foreign.append(
                f"{flag}: {path} is not one of the shards dataset_info.json lists in its "
                "directory (a file from another build?)"
            )
            continue
        size = os.path.getsize(path)
        if size != entry.get("bytes", size):
            damaged.append(
                f"{flag}: {path} has {size} bytes but was written with {entry['bytes']} "
                "(truncated or modified since)"
            )
        elif entry.get("examples") == 0 or size == 0:
            damaged.append(f"{flag}: {path} holds no records")
    return foreign, damaged


def locate_damage(files: list[str], compression: str, flag: str) -> str:
    """Scans `files` in order and describes the first damaged one (for an error)."""
    for path in files:
        scan = scan_shard(path, compression)
        if scan.damaged:
            return f"{flag}: {scan.describe()}"
    return f"{flag}: no damaged record found on a second read (a failing disk?)"
