"""The fine-tuning command: flags -> `FinetuneOptions` -> the job, and the
summary of the final (and best) evaluation.

`python -m electra_tf.finetune` runs `run_command` once its flags parsed.
"""

from __future__ import annotations

import dataclasses

from electra_tf import flags as electra_flags
from electra_tf.finetuning.job import FinetuneOptions, run_finetuning
from electra_tf.tasks.info import load_info

FLAGS = electra_flags.FLAGS


def options_from_flags() -> FinetuneOptions:
    """FinetuneOptions from the parsed flags (errors name the flag)."""
    config = None
    if not FLAGS.init_checkpoint:
        info = load_info(FLAGS.data_dir)
        config = electra_flags.model_config_from_flags(info["vocab_size"], info["max_seq_length"])
    fields = {
        f.name
        for f in dataclasses.fields(FinetuneOptions)
        if f.name not in ("config", "num_train_steps")
    }
    return FinetuneOptions(config=config, **{name: getattr(FLAGS, name) for name in fields})


def run_command() -> dict:
    history = run_finetuning(options_from_flags())
    for name in ("final", "best"):
        entry = history.get(name)
        if entry:
            shown = ", ".join(
                f"{k} {v:.4f}" for k, v in entry.items() if k not in ("step", "epoch")
            )
            print(f"{name} (step {entry['step']}): {shown}; saved in {FLAGS.model_dir}/{name}")
    return history
