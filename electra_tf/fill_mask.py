r"""Fill-mask from the command line: the generator's top word pieces at each [MASK].

    python -m electra_tf.fill_mask --model_dir=runs/small "The cat sat on the [MASK]."

--model_dir is a pre-training model_dir (its generator/), an
`electra_tf.convert` output of a published checkpoint, or a generator tower.
A [MASK] glued to a word (`play[MASK]`) is completed with ## pieces; one that
starts a word is offered whole-word starts only. --json prints one JSON object
per text.
"""

from __future__ import annotations

from electra_tf import cli
from electra_tf import flags as electra_flags


def run() -> None:
    cli.main(
        electra_flags.define_fill_mask_flags,
        "electra_tf.serving.fill_mask_command:run_command",
        required=("model_dir",),
        positional=True,
    )


if __name__ == "__main__":
    run()
