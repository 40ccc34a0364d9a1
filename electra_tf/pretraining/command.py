"""The pre-training command: flags -> `PretrainOptions` -> the job.

`python -m electra_tf.pretrain` runs `run_command` once its flags parsed.
"""

from __future__ import annotations

import dataclasses

from electra_tf import flags as electra_flags
from electra_tf.pretraining.job import PretrainOptions, config_for_init, run_pretraining

FLAGS = electra_flags.FLAGS


def options_from_flags() -> PretrainOptions:
    """PretrainOptions from the parsed flags (errors name the flag)."""
    if FLAGS.init_checkpoint:
        # The checkpoint fixes the architecture; --model_overrides may still
        # change what it does not hold (a fresh generator's size, dropout).
        config = config_for_init(FLAGS.init_checkpoint, electra_flags.model_overrides_from_flags())
    else:
        config = electra_flags.model_config_from_flags()
    fields = {f.name for f in dataclasses.fields(PretrainOptions) if f.name != "config"}
    return PretrainOptions(config=config, **{name: getattr(FLAGS, name) for name in fields})


def run_command():
    return run_pretraining(options_from_flags())
