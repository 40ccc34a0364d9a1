r"""The GLUE suite from the command line: prepare, fine-tune N seeds, tabulate.

    python -m electra_tf.glue --flagfile=configs/finetune_small.flags \
        --init_checkpoint=runs/small --glue_dir=glue_data --vocab=vocab.txt \
        --output_dir=runs/glue --seeds=5 [--tasks=rte,mrpc]

`--glue_dir` is GLUE's own layout (`CoLA/`, `SST-2/`, `MRPC/`, `STS-B/`,
`QQP/`, `MNLI/`, `QNLI/`, `RTE/`, `WNLI/`). Every fine-tuning flag applies
to each run; epochs default to each task's (the reference's). Writes
`glue_results.md` and `.json` in `--output_dir`; rerunning skips what is
done and resumes what was interrupted.
"""

from __future__ import annotations

from absl import app, flags, logging

from electra_tf import console
from electra_tf import flags as electra_flags

FLAGS = electra_flags.FLAGS


def define_flags() -> None:
    electra_flags.define_finetune_flags()
    flags.DEFINE_string("glue_dir", None, "GLUE's directory (CoLA/, SST-2/, MRPC/, ...).")
    flags.DEFINE_string("output_dir", None, "Records, runs and the results table go here.")
    flags.DEFINE_string("vocab", None, "The WordPiece vocab the encoder was pre-trained with.")
    flags.DEFINE_list("tasks", None, "GLUE tasks to run (default: every one in --glue_dir).")
    flags.DEFINE_integer("seeds", 5, "Fine-tuning runs per task (seeds 1..N); medians reported.")
    flags.DEFINE_integer("max_seq_length", 128, "Tokens per example.")
    flags.DEFINE_boolean("lower_case", True, "Lower-case and strip accents (uncased vocab).")


def options_from_flags():
    from electra_tf.finetuning.glue import GlueOptions
    from electra_tf.finetuning.job import FinetuneOptions
    from electra_tf.vocab import Vocab

    for name in ("glue_dir", "output_dir", "vocab"):
        if not getattr(FLAGS, name):
            raise app.UsageError(f"--{name} is required")
    config = None
    if not FLAGS.init_checkpoint:
        config = electra_flags.model_config_from_flags(
            Vocab.load(FLAGS.vocab).size, FLAGS.max_seq_length
        )
    skip = {"config", "num_train_steps", "data_dir", "model_dir", "seed"}
    fields = {f for f in FinetuneOptions.__dataclass_fields__ if f not in skip}
    template = FinetuneOptions(
        data_dir="",
        model_dir="",
        config=config,
        **{name: getattr(FLAGS, name) for name in fields},
    )
    return GlueOptions(
        glue_dir=FLAGS.glue_dir,
        output_dir=FLAGS.output_dir,
        vocab=FLAGS.vocab,
        finetune=template,
        tasks=tuple(t.lower() for t in FLAGS.tasks) if FLAGS.tasks else None,
        seeds=FLAGS.seeds,
        max_seq_length=FLAGS.max_seq_length,
        lower_case=FLAGS.lower_case,
    )


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {' '.join(argv[1:])}")
    logging.set_verbosity(logging.WARNING)
    from electra_tf.finetuning.glue import run_glue

    console.run_job(lambda: run_glue(options_from_flags()))


def run() -> None:
    console.install()  # before TensorFlow starts logging
    define_flags()
    app.run(main)


if __name__ == "__main__":
    run()
