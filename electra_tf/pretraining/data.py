"""tf.data input pipelines for pre-training TFRecords (static or dynamic masks).

The order of examples is a pure function of (files, seed), so a resumed run
skips exactly the records it already consumed: skipping happens on the raw
serialised records, before parsing, which costs little. Records without
masked_lm_* features are masked here with `electra_tf.masking`, keyed by the
absolute batch index, so resumed runs see the same masks too.
"""

from __future__ import annotations

import dataclasses
import glob
import logging
import os

import tensorflow as tf

from electra_tf import records
from electra_tf.compat import tf_record_random_reader
from electra_tf.masking import Masker
from electra_tf.shard_scan import ShardScan, check_complete, check_listed, scan_shard

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class PretrainingData:
    """Where the records are and what shape they have."""

    files: tuple[str, ...]
    max_seq_length: int
    max_predictions_per_seq: int | None  # None: unmasked records
    compression: str  # "" or "GZIP"
    info: dict | None
    # With --skip_corrupt_records: every file's scan (damaged files are read
    # record by record past the damage); None otherwise.
    scans: dict[str, ShardScan] | None = None

    def skipped(self) -> dict:
        """What skipping leaves out: corrupt records, lost bytes, the files."""
        damaged = [s for s in (self.scans or {}).values() if s.damaged]
        return {
            "corrupt_records": sum(len(s.corrupt) for s in damaged),
            "lost_bytes": sum(s.lost_bytes for s in damaged),
            "damaged_files": [s.describe() for s in damaged],
        }


def _compression_of(path: str) -> str:
    return "GZIP" if path.endswith(".gz") else ""


def resolve_files(patterns: str, flag: str = "--train_data") -> list[str]:
    files: list[str] = []
    for pattern in [p for p in patterns.split(",") if p.strip()]:
        matched = sorted(f for f in glob.glob(pattern.strip()) if not f.endswith(".json"))
        if not matched:
            raise ValueError(f"{flag}: {pattern!r} matches no file")
        files.extend(matched)
    if not files:
        raise ValueError(f"{flag} is empty")
    return files


def _directory_infos(files: list[str], flag: str) -> dict[str, dict | None]:
    """Each directory's dataset_info.json; directories built differently are refused."""
    infos = {d: records.read_dataset_info(d) for d in _dirs(files)}
    known = [(d, i) for d, i in infos.items() if i is not None]
    for d, info in known[1:]:
        d0, info0 = known[0]
        for field in ("vocab_sha256", "vocab_size", "max_seq_length", "masking", "compression"):
            if field in info0 and field in info and info0[field] != info[field]:
                raise ValueError(
                    f"{flag}: {d} and {d0} were built differently: dataset_info.json field "
                    f"{field} is {info[field]!r} vs {info0[field]!r}"
                )
    return infos


def _dirs(files: list[str]) -> list[str]:
    return list(dict.fromkeys(os.path.dirname(os.path.abspath(f)) for f in files))


def _layout(path: str) -> tuple[int, int | None] | None:
    """(sequence length, masked positions or None) of a file's first record."""
    for raw in tf.data.TFRecordDataset(path, compression_type=_compression_of(path)).take(1):
        feats = tf.train.Example.FromString(raw.numpy()).features.feature
        for name in records.SEQUENCE_FEATURES:
            if name not in feats:
                raise ValueError(f"records lack the feature {name!r} (file {path})")
        masked = all(name in feats for name in records.MASKED_LM_FEATURES)
        n = len(feats["masked_lm_positions"].int64_list.value) if masked else None
        return len(feats["input_ids"].int64_list.value), n
    return None


def inspect_data(
    patterns: str, flag: str = "--train_data", skip_corrupt_records: bool = False
) -> PretrainingData:
    """Finds the files, checks them and reads the record layout.

    Every file must be listed, at its recorded size, in its directory's
    dataset_info.json (when there is one), and have the same record layout
    as the others; otherwise the error names the file. With
    `skip_corrupt_records`, each file is read through once to find damaged
    records, which training then skips (empty, truncated and corrupt files
    are no longer errors; see `PretrainingData.skipped`).
    """
    files = resolve_files(patterns, flag)
    infos = _directory_infos(files, flag)
    compression = _compression_of(files[0])
    incomplete = check_complete(files, infos, flag)
    if incomplete:
        raise ValueError("\n".join(incomplete))
    foreign, damaged = check_listed(files, infos, flag)
    if foreign:
        raise ValueError("\n".join(foreign))
    if damaged and not skip_corrupt_records:
        raise ValueError(
            "\n".join(damaged) + "\n(--skip_corrupt_records reads past damaged records and "
            "counts them)"
        )
    scans = {f: scan_shard(f, compression) for f in files} if skip_corrupt_records else None
    layouts = {}
    for path in files:
        try:
            layout = _layout(path)
        except tf.errors.DataLossError:
            layout = None  # a damaged first record: the scan accounts for it
            if not skip_corrupt_records:
                raise ValueError(f"{flag}: {scan_shard(path, compression).describe()}") from None
        except ValueError as e:
            raise ValueError(f"{flag}: {e}") from None
        if layout is None:
            if not skip_corrupt_records:
                raise ValueError(f"{flag}: {path} holds no records")
            continue
        layouts[path] = layout
    if not layouts:
        raise ValueError(f"{flag}: the files matched by {patterns!r} hold no records")
    first_path, (length, n) = next(iter(layouts.items()))
    for path, layout in layouts.items():
        if layout != (length, n):
            raise ValueError(
                f"{flag}: {path} holds records of length {layout[0]} with "
                f"{layout[1]} masked positions, but {first_path} holds length {length} with {n}"
            )
    info = infos[os.path.dirname(os.path.abspath(files[0]))]
    return PretrainingData(tuple(files), length, n, compression, info, scans)


def check_compatible(
    data: PretrainingData, vocab_size: int, max_seq_length: int, source: str
) -> None:
    """Refuses data that does not fit the model, naming the field."""
    if data.info is not None:
        records.check_dataset_info(
            data.info, source, vocab_size=vocab_size, max_seq_length=max_seq_length
        )
    elif data.max_seq_length != max_seq_length:
        raise ValueError(
            f"{source}: records have input_ids of length {data.max_seq_length} but the "
            f"training run uses max_seq_length={max_seq_length}"
        )


def _parse_fn(length: int, n: int | None):
    spec = {name: tf.io.FixedLenFeature([length], tf.int64) for name in records.SEQUENCE_FEATURES}
    if n is not None:
        spec["masked_lm_positions"] = tf.io.FixedLenFeature([n], tf.int64)
        spec["masked_lm_ids"] = tf.io.FixedLenFeature([n], tf.int64)
        spec["masked_lm_weights"] = tf.io.FixedLenFeature([n], tf.float32)

    def parse(serialized):
        parsed = tf.io.parse_example(serialized, spec)
        return {
            k: (v if v.dtype == tf.float32 else tf.cast(v, tf.int32)) for k, v in parsed.items()
        }

    return parse


def _file_reader(data: PretrainingData):
    """index -> the records of that file (read past damage with --skip_corrupt_records)."""
    paths = tf.constant(list(data.files))
    damaged = [data.scans[f] if data.scans and data.scans[f].damaged else None for f in data.files]

    def intact(i):
        return tf.data.TFRecordDataset(tf.gather(paths, i), compression_type=data.compression)

    if not any(damaged):
        return intact
    if data.compression:
        # A compressed stream cannot be re-entered past damage: its intact prefix.
        counts = tf.constant([s.readable if s else -1 for s in damaged], tf.int64)
        return lambda i: intact(i).take(tf.gather(counts, i))
    offsets = tf.ragged.constant([s.readable if s else [] for s in damaged], dtype=tf.int64)
    is_damaged = tf.constant([s is not None for s in damaged])

    readers = {}

    def read_at(path, offset):
        path = path.numpy().decode("utf-8")
        if path not in readers:
            readers[path] = tf_record_random_reader(path)
        return readers[path].read(int(offset))[0]

    def mended(i):
        path = tf.gather(paths, i)
        return tf.data.Dataset.from_tensor_slices(offsets[i]).map(
            lambda offset: tf.ensure_shape(tf.py_function(read_at, [path, offset], tf.string), [])
        )

    return lambda i: tf.cond(tf.gather(is_damaged, i), lambda: mended(i), lambda: intact(i))


def pretraining_dataset(
    data: PretrainingData,
    batch_size: int,
    *,
    seed: int = 0,
    training: bool = True,
    skip_records: int = 0,
    first_batch_index: int = 0,
    masker: Masker | None = None,
    input_context: tf.distribute.InputContext | None = None,
    shuffle_buffer: int = 10000,
    repeat: bool = False,
) -> tf.data.Dataset:
    """Batches of pre-training features.

    Args:
        data: From `inspect_data`.
        batch_size: Examples per batch (per input pipeline).
        seed: Shuffling and dynamic-masking seed.
        training: Shuffle and repeat forever; otherwise one ordered pass.
        skip_records: Records already consumed (resume).
        first_batch_index: Absolute index of the first batch (keys dynamic masks).
        masker: How to mask unmasked records (required for them).
        input_context: Shards by file when there are enough files.
        shuffle_buffer: Records in the shuffle buffer.
        repeat: Repeat an evaluation pass (training always repeats).
    """
    files = list(data.files)
    pipeline_id = input_context.input_pipeline_id if input_context is not None else 0
    ds = tf.data.Dataset.range(len(files))  # file indices
    if input_context is not None and input_context.num_input_pipelines > 1:
        if len(files) >= input_context.num_input_pipelines:
            ds = ds.shard(input_context.num_input_pipelines, input_context.input_pipeline_id)
        else:
            log.warning(
                "%d files for %d input pipelines: sharding by record, not by file",
                len(files),
                input_context.num_input_pipelines,
            )
    if training:
        ds = ds.shuffle(len(files), seed=seed, reshuffle_each_iteration=True)
    ds = ds.interleave(
        _file_reader(data),
        cycle_length=min(len(files), 8),
        num_parallel_calls=tf.data.AUTOTUNE,
        deterministic=True,
    )
    if (
        input_context is not None
        and input_context.num_input_pipelines > 1
        and len(files) < input_context.num_input_pipelines
    ):
        ds = ds.shard(input_context.num_input_pipelines, input_context.input_pipeline_id)
    if training:
        ds = ds.shuffle(shuffle_buffer, seed=seed, reshuffle_each_iteration=True).repeat()
    elif repeat:
        ds = ds.repeat()
    if skip_records:
        ds = ds.skip(skip_records)
    ds = ds.batch(batch_size, drop_remainder=training)
    ds = ds.map(
        _parse_fn(data.max_seq_length, data.max_predictions_per_seq),
        num_parallel_calls=tf.data.AUTOTUNE,
        deterministic=True,
    )
    if data.max_predictions_per_seq is None:
        if masker is None:
            raise ValueError("records are unmasked: a Masker is needed for dynamic masking")

        def dynamic_mask(index, batch):
            batch_seed = tf.stack(
                [tf.constant(seed % (1 << 31), tf.int64), index + first_batch_index]
            )
            batch_seed = tf.cast(batch_seed, tf.int32)
            if pipeline_id:  # each worker's pipeline masks its own batches differently
                batch_seed = tf.random.experimental.stateless_fold_in(batch_seed, pipeline_id)
            masked = masker(batch["input_ids"], batch["input_mask"], batch_seed)
            return {**batch, **masked}

        ds = ds.enumerate().map(
            dynamic_mask, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True
        )
    options = tf.data.Options()
    options.deterministic = True
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.OFF
    return ds.with_options(options).prefetch(tf.data.AUTOTUNE)
