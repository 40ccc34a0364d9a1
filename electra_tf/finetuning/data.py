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
KINDS = ("classification", "regression", "span", "tagging")


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
    if info.get("kind") not in KINDS:
        raise ValueError(f"{path}: 'kind' must be one of {KINDS}, got {info.get('kind')!r}")
    return info


def feature_spec(info: dict[str, Any], length: int) -> dict[str, tf.io.FixedLenFeature]:
    spec = {
        name: tf.io.FixedLenFeature([length], tf.int64)
        for name in ("input_ids", "input_mask", "segment_ids")
    }
    kind = info["kind"]
    if kind == "classification":
        spec["label_ids"] = tf.io.FixedLenFeature([], tf.int64)
    elif kind == "regression":
        spec["label"] = tf.io.FixedLenFeature([], tf.float32)
    elif kind == "tagging":
        spec["label_ids"] = tf.io.FixedLenFeature([length], tf.int64)
    else:
        for name in ("unique_ids", "start_positions", "end_positions", "is_impossible"):
            spec[name] = tf.io.FixedLenFeature([], tf.int64)
    return spec


def finetune_dataset(
    data_dir: str,
    info: dict[str, Any],
    split: str,
    batch_size: int,
    training: bool,
    seed: int = 0,
) -> tf.data.Dataset:
    """Batches of (features, labels) dicts, int32; training data is shuffled and repeated."""
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
        ds = ds.shuffle(info["splits"][split]["features"], seed=seed, reshuffle_each_iteration=True)
        ds = ds.repeat()
    ds = ds.map(parse, num_parallel_calls=tf.data.AUTOTUNE)
    return ds.batch(batch_size, drop_remainder=training).prefetch(tf.data.AUTOTUNE)
