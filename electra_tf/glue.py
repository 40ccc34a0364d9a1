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

from absl import flags

from electra_tf import cli
from electra_tf import flags as electra_flags


def define_flags() -> None:
    electra_flags.define_finetune_flags()
    flags.DEFINE_string("glue_dir", None, "GLUE's directory (CoLA/, SST-2/, MRPC/, ...).")
    flags.DEFINE_string("output_dir", None, "Records, runs and the results table go here.")
    flags.DEFINE_string("vocab", None, "The WordPiece vocab the encoder was pre-trained with.")
    flags.DEFINE_list("tasks", None, "GLUE tasks to run (default: every one in --glue_dir).")
    flags.DEFINE_integer("seeds", 5, "Fine-tuning runs per task (seeds 1..N); medians reported.")
    flags.DEFINE_integer("max_seq_length", 128, "Tokens per example.")
    flags.DEFINE_boolean("lower_case", True, "Lower-case and strip accents (uncased vocab).")


def run() -> None:
    cli.main(
        define_flags,
        "electra_tf.finetuning.glue_command:run_command",
        required=("glue_dir", "output_dir", "vocab"),
        output_dirs=("output_dir",),
    )


if __name__ == "__main__":
    run()
