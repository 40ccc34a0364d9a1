r"""ELECTRA pre-training from the command line.

    python -m electra_tf.pretrain --flagfile=configs/electra_small.flags \
        --train_data='data/pretrain-*.tfrecord' --model_dir=runs/small

Rerunning the same command resumes from the latest checkpoint in
--model_dir. See `python -m electra_tf.pretrain --help` for its flags.
"""

from __future__ import annotations

from electra_tf import cli
from electra_tf import flags as electra_flags


def run() -> None:
    cli.main(
        electra_flags.define_pretrain_flags,
        "electra_tf.pretraining.command:run_command",
        required=("train_data", "model_dir"),
        output_dirs=("model_dir",),
    )


if __name__ == "__main__":
    run()
