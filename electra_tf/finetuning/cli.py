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

from absl import app, logging

from electra_tf import console
from electra_tf import flags as electra_flags

FLAGS = electra_flags.FLAGS


def options_from_flags():
    """FinetuneOptions from the parsed flags (errors name the flag)."""
    from electra_tf.finetuning.data import load_info
    from electra_tf.finetuning.job import FinetuneOptions

    for name in ("data_dir", "model_dir"):
        if not getattr(FLAGS, name):
            raise app.UsageError(f"--{name} is required")
    config = None
    if not FLAGS.init_checkpoint:
        info = load_info(FLAGS.data_dir)
        config = electra_flags.model_config_from_flags(info["vocab_size"], info["max_seq_length"])
    fields = {
        f for f in FinetuneOptions.__dataclass_fields__ if f not in ("config", "num_train_steps")
    }
    return FinetuneOptions(config=config, **{name: getattr(FLAGS, name) for name in fields})


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {' '.join(argv[1:])}")
    logging.set_verbosity(logging.WARNING)
    from electra_tf.finetuning.job import run_finetuning

    history = console.run_job(lambda: run_finetuning(options_from_flags()))
    for name in ("final", "best"):
        entry = history.get(name)
        if entry:
            shown = ", ".join(
                f"{k} {v:.4f}" for k, v in entry.items() if k not in ("step", "epoch")
            )
            print(f"{name} (step {entry['step']}): {shown}; saved in {FLAGS.model_dir}/{name}")


def run() -> None:
    console.install()  # before TensorFlow starts logging
    electra_flags.define_finetune_flags()
    app.run(main)


if __name__ == "__main__":
    run()
