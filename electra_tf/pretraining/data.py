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
from electra_tf.masking import Masker

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class PretrainingData:
    """Where the records are and what shape they have."""

    files: tuple[str, ...]
    max_seq_length: int
    max_predictions_per_seq: int | None  # None: unmasked records
    compression: str  # "" or "GZIP"
    info: dict | None


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


def inspect_data(patterns: str, flag: str = "--train_data") -> PretrainingData:
    """Finds the files, reads dataset_info.json (if any) and the record layout."""
    files = resolve_files(patterns, flag)
    info = records.read_dataset_info(os.path.dirname(os.path.abspath(files[0])))
    compression = _compression_of(files[0])
    first = None
    for path in files:
        for raw in tf.data.TFRecordDataset(path, compression_type=_compression_of(path)).take(1):
            first = tf.train.Example.FromString(raw.numpy())
        if first is not None:
            break
    if first is None:
        raise ValueError(f"{flag}: the files matched by {patterns!r} hold no records")
    feats = first.features.feature
    for name in records.SEQUENCE_FEATURES:
        if name not in feats:
            raise ValueError(f"{flag}: records lack the feature {name!r} (file {files[0]})")
    length = len(feats["input_ids"].int64_list.value)
    masked = all(name in feats for name in records.MASKED_LM_FEATURES)
    n = len(feats["masked_lm_positions"].int64_list.value) if masked else None
    return PretrainingData(tuple(files), length, n, compression, info)


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
    ds = tf.data.Dataset.from_tensor_slices(files)
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
        lambda f: tf.data.TFRecordDataset(f, compression_type=data.compression),
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
