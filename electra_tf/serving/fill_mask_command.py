"""The fill-mask command: flags and texts -> `FillMask` -> one line per [MASK]
(or JSON).

`python -m electra_tf.fill_mask` runs `run_command` once its flags parsed.
"""

from __future__ import annotations

import dataclasses
import json

from electra_tf import flags as electra_flags
from electra_tf.serving.fill_mask import FillMask

FLAGS = electra_flags.FLAGS


def run_command(texts: list[str]) -> list:
    if not texts:
        raise ValueError('pass one or more texts with [MASK] in them, e.g. "a [MASK] day"')
    fill = FillMask.from_model_dir(FLAGS.model_dir, FLAGS.vocab)
    results = fill(texts, FLAGS.top_k)
    for text, masks in zip(texts, results):
        if FLAGS.json:
            predictions = [[dataclasses.asdict(p) for p in mask] for mask in masks]
            print(json.dumps({"text": text, "masks": predictions}))
            continue
        print(text)
        for number, mask in enumerate(masks, 1):
            shown = "  ".join(f"{p.word} {p.probability:.3f}" for p in mask)
            print(f"  [MASK] {number}: {shown}")
    return results
