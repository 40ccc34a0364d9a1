"""Fine-tuning records: the info file data_prep writes and the tf.data pipeline that reads them.

`data_prep.build_finetuning_data` writes `<split>.tfrecord` files described by
`finetune_info.json`; `finetune_dataset` parses them for the task's kind.
"""

from __future__ import annotations

import json
import os
from typing import Any

import tensorflow as tf

INFO_FILE = "finetune_info.json"
IGNORE = -1  # label id of word-piece continuations and padding in tagging records


def load_info(data_dir: str) -> dict[str, Any]:
    """Reads finetune_info.json, with an error that says how to make it."""
    path = os.path.join(data_dir, INFO_FILE)
    try:
        with open(path) as f:
            info = json.load(f)
    except FileNotFoundError:
        raise ValueError(
            f"{path} not found: run `python -m data_prep.build_finetuning_data` first"
        ) from None
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}: not valid JSON ({e})") from e
    from electra_tf.finetuning.tasks import kinds

    if info.get("kind") not in kinds():
        raise ValueError(f"{path}: 'kind' must be one of {kinds()}, got {info.get('kind')!r}")
    return info


def feature_spec(info: dict[str, Any], length: int) -> dict[str, tf.io.FixedLenFeature]:
    """Parsing spec of a record: the model inputs and the task's labels."""
    from electra_tf.finetuning.tasks import get_task

    spec = {
        name: tf.io.FixedLenFeature([length], tf.int64)
        for name in ("input_ids", "input_mask", "segment_ids")
    }
    spec.update(get_task(info["kind"]).label_spec(length))
    return spec


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
