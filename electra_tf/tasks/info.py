"""What fine-tuning records hold: the info file data_prep writes beside them
and the parsing spec of a record of each task kind.

`data_prep.build_finetuning_data` writes `<split>.tfrecord` files described by
`finetune_info.json`; the fine-tuning job's input pipeline reads them.
"""

from __future__ import annotations

import json
import os
from typing import Any

import tensorflow as tf

from electra_tf import records
from electra_tf.tasks.base import get_task, kinds

INFO_FILE = records.FINETUNE_INFO
IGNORE = records.IGNORE_LABEL


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
    if info.get("kind") not in kinds():
        raise ValueError(f"{path}: 'kind' must be one of {kinds()}, got {info.get('kind')!r}")
    return info


def feature_spec(info: dict[str, Any], length: int) -> dict[str, tf.io.FixedLenFeature]:
    """Parsing spec of a record: the model inputs and the task's labels."""
    spec = {
        name: tf.io.FixedLenFeature([length], tf.int64)
        for name in ("input_ids", "input_mask", "segment_ids")
    }
    spec.update(get_task(info["kind"]).label_spec(length))
    return spec
