"""The GLUE command: flags -> `GlueOptions` -> the suite runner.

`python -m electra_tf.glue` runs `run_command` once its flags parsed.
"""

from __future__ import annotations

import dataclasses

from electra_tf import flags as electra_flags
from electra_tf.finetuning.glue_suite import GlueOptions, run_glue
from electra_tf.finetuning.job import FinetuneOptions
from electra_tf.vocab import Vocab

FLAGS = electra_flags.FLAGS


def options_from_flags() -> GlueOptions:
    """GlueOptions from the parsed flags: a fine-tuning template and the suite."""
    config = None
    if not FLAGS.init_checkpoint:
        config = electra_flags.model_config_from_flags(
            Vocab.load(FLAGS.vocab).size, FLAGS.max_seq_length
        )
    skip = {"config", "num_train_steps", "data_dir", "model_dir", "seed"}
    fields = {f.name for f in dataclasses.fields(FinetuneOptions) if f.name not in skip}
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


def run_command():
    return run_glue(options_from_flags())
