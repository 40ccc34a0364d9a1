r"""ELECTRA fine-tuning from the command line.

    python -m data_prep.build_finetuning_data --task=sst-2 --input_dir=glue/SST-2 \
        --vocab=vocab.txt --output_dir=data/sst2
    python -m electra_tf.finetune --flagfile=configs/finetune_small.flags \
        --data_dir=data/sst2 --init_checkpoint=runs/small --model_dir=runs/sst2

Evaluates on every dev split at the end of each epoch, writes the model at
the latest evaluation to `--model_dir/final` (what `electra_tf.export` reads;
`--keep_best` also keeps `best/`), `metrics.json` and TensorBoard logs.
Rerunning the same command resumes.
"""

from __future__ import annotations

from electra_tf import cli
from electra_tf import flags as electra_flags


def run() -> None:
    cli.main(
        electra_flags.define_finetune_flags,
        "electra_tf.finetuning.command:run_command",
        required=("data_dir", "model_dir"),
        output_dirs=("model_dir",),
    )


if __name__ == "__main__":
    run()
