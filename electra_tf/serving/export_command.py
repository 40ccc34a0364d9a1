"""The export command: flags -> `saved_model.export`.

`python -m electra_tf.export` runs `run_command` once its flags parsed.
"""

from __future__ import annotations

from electra_tf import flags as electra_flags
from electra_tf.serving.saved_model import export

FLAGS = electra_flags.FLAGS


def run_command() -> str:
    path = export(
        FLAGS.checkpoint,
        FLAGS.export_dir,
        FLAGS.version,
        FLAGS.vocab,
        FLAGS.max_seq_length,
        FLAGS.max_answer_length,
        batch_shards=FLAGS.batch_shards,
    )
    print(f"exported {path}")
    return path
