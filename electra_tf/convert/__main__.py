r"""Checkpoint conversion from the command line.

    python -m electra_tf.convert --from=google --input=electra_small/model.ckpt --output=imported/
    python -m electra_tf.convert --from=hf --input=hf_electra_dir --output=imported/
    python -m electra_tf.convert --from=keras_hub --input=keras_hub_preset_dir --output=imported/
    python -m electra_tf.convert --to=hf --input=runs/small --output=hf_out/

Imports write our tower format (`<output>/discriminator|generator|encoder/`
with model.weights.h5 + electra_config.json, loaded by
`electra_tf.checkpoints.load_tower`). Exports read a pre-training model_dir (or
one tower directory) and write `<output>/discriminator` and/or
`<output>/generator` as Hugging Face models.
"""

from __future__ import annotations

import os
import sys

from absl import app, logging

from electra_tf import console
from electra_tf import flags as electra_flags

FLAGS = electra_flags.FLAGS


def _towers_of(model) -> dict:
    from electra_tf.modeling import (
        ElectraBackbone,
        ElectraDiscriminator,
        ElectraGenerator,
    )
    from electra_tf.pretraining import ElectraPretrainer

    if isinstance(model, ElectraPretrainer):
        return {"discriminator": model.discriminator, "generator": model.generator}
    if isinstance(model, ElectraDiscriminator):
        return {"discriminator": model}
    if isinstance(model, ElectraGenerator):
        return {"generator": model}
    if isinstance(model, ElectraBackbone):
        return {"encoder": model}
    raise TypeError(type(model).__name__)


def convert() -> list[str]:
    from electra_tf.checkpoints import load_tower, save_tower

    written = []
    if FLAGS["from"].value:
        source = FLAGS["from"].value
        if source == "google":
            from electra_tf.convert import google

            model = google.load(FLAGS.input, FLAGS.tower)
        elif source == "hf":
            from electra_tf.convert import huggingface

            model, _ = huggingface.load(FLAGS.input)
        else:
            from electra_tf.convert import keras_hub

            model = keras_hub.load(FLAGS.input)
        for name, tower in _towers_of(model).items():
            out = os.path.join(FLAGS.output, name)
            save_tower(tower, tower.config, out)
            print(f"{name}: loaded all {len(tower.weights)} variables -> {out}")
            written.append(out)
        return written

    from electra_tf.convert import huggingface

    if os.path.exists(os.path.join(FLAGS.input, "model.weights.h5")):  # one tower's directory
        if FLAGS.tower == "both":
            raise ValueError(f"--input {FLAGS.input} is a single tower: say which with --tower")
        found = {FLAGS.tower: FLAGS.input}
    else:  # a pre-training model_dir
        wanted = ("discriminator", "generator") if FLAGS.tower == "both" else (FLAGS.tower,)
        found = {t: os.path.join(FLAGS.input, t) for t in wanted}
        found = {
            t: d for t, d in found.items() if os.path.exists(os.path.join(d, "model.weights.h5"))
        }
    if not found:
        raise ValueError(
            f"--input {FLAGS.input}: no discriminator/ or generator/ tower (model.weights.h5)"
        )
    for name, directory in found.items():
        tower = load_tower(directory, name)
        out = os.path.join(FLAGS.output, name)
        arch = huggingface.save(tower, out)
        print(f"{name}: wrote {arch} -> {out}")
        written.append(out)
    return written


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {' '.join(argv[1:])}")
    if bool(FLAGS["from"].value) == bool(FLAGS.to):
        raise app.UsageError("pass exactly one of --from=google|hf|keras_hub or --to=hf")
    for name in ("input", "output"):
        if not getattr(FLAGS, name):
            raise app.UsageError(f"--{name} is required")
    logging.set_verbosity(logging.WARNING)
    try:
        convert()
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)


def run() -> None:
    console.install()  # before TensorFlow starts logging
    electra_flags.define_convert_flags()
    app.run(main)


if __name__ == "__main__":
    run()
