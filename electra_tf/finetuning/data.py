"""The fine-tuning input pipeline: batches of (features, labels) from the
records `data_prep.build_finetuning_data` writes (described in
`electra_tf.tasks.info`)."""

from __future__ import annotations

import os
from typing import Any

import tensorflow as tf

from electra_tf.tasks.info import INFO_FILE, feature_spec


def finetune_dataset(
    data_dir: str,
    info: dict[str, Any],
    split: str,
    batch_size: int,
    training: bool,
    seed: int = 0,
    skip_records: int = 0,
    input_context: tf.distribute.InputContext | None = None,
) -> tf.data.Dataset:
    """Batches of (features, labels) dicts, int32.

    Training data is sharded by record across input pipelines (workers),
    shuffled with `seed` (reshuffled each epoch), repeated, and starts after
    `skip_records` records of that stream: a resumed run sees exactly the
    batches an uninterrupted one would.
    """
    if split not in info["splits"]:
        raise ValueError(
            f"{os.path.join(data_dir, INFO_FILE)} has no split {split!r} "
            f"(it has {', '.join(info['splits'])})"
        )
    path = os.path.join(data_dir, info["splits"][split]["file"])
    spec = feature_spec(info, info["max_seq_length"])
    inputs = ("input_ids", "input_mask", "segment_ids")

    def parse(record):
        parsed = tf.io.parse_single_example(record, spec)
        parsed = {k: tf.cast(v, tf.int32) if v.dtype == tf.int64 else v for k, v in parsed.items()}
        return {k: parsed[k] for k in inputs}, {k: v for k, v in parsed.items() if k not in inputs}

    ds = tf.data.TFRecordDataset(path)
    if training:
        records = info["splits"][split]["features"]
        if input_context is not None and input_context.num_input_pipelines > 1:
            ds = ds.shard(input_context.num_input_pipelines, input_context.input_pipeline_id)
            records = -(-records // input_context.num_input_pipelines)
        ds = ds.shuffle(records, seed=seed, reshuffle_each_iteration=True).repeat()
        ds = ds.skip(skip_records)
    ds = ds.map(parse, num_parallel_calls=tf.data.AUTOTUNE)
    return ds.batch(batch_size, drop_remainder=training).prefetch(tf.data.AUTOTUNE)
