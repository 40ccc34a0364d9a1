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

from electra_tf import cli
from electra_tf import flags as electra_flags


def run() -> None:
    cli.main(
        electra_flags.define_convert_flags,
        "electra_tf.convert.command:run_command",
        required=("input", "output"),
        output_dirs=("output",),
    )


if __name__ == "__main__":
    run()
