r"""ELECTRA pre-training from the command line.

    python -m electra_tf.pretrain --flagfile=configs/electra_small.flags \
        --train_data='data/pretrain-*.tfrecord' --model_dir=runs/small

Rerunning the same command resumes from the latest checkpoint in
--model_dir. See `python -m electra_tf.pretrain --helpfull` for every flag.
"""

from __future__ import annotations

from absl import app, logging

from electra_tf import console
from electra_tf import flags as electra_flags

FLAGS = electra_flags.FLAGS


def options_from_flags():
    """PretrainOptions from the parsed flags (errors name the flag)."""
    from electra_tf.pretraining.job import PretrainOptions, config_for_init

    for name in ("train_data", "model_dir"):
        if not getattr(FLAGS, name):
            raise app.UsageError(f"--{name} is required")
    if FLAGS.init_checkpoint:
        # The checkpoint fixes the architecture; --model_overrides may still
        # change what it does not hold (a fresh generator's size, dropout).
        config = config_for_init(FLAGS.init_checkpoint, electra_flags.model_overrides_from_flags())
    else:
        config = electra_flags.model_config_from_flags()
    fields = {f for f in PretrainOptions.__dataclass_fields__ if f != "config"}
    return PretrainOptions(config=config, **{name: getattr(FLAGS, name) for name in fields})


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {' '.join(argv[1:])}")
    logging.set_verbosity(logging.WARNING)  # TF's checkpoint INFO lines drown the log.
    from electra_tf.pretraining.job import run_pretraining

    console.run_job(lambda: run_pretraining(options_from_flags()))


def run() -> None:
    console.install()  # before TensorFlow starts logging
    electra_flags.define_pretrain_flags()
    app.run(main)


if __name__ == "__main__":
    run()
