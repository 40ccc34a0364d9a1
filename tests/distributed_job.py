"""Runs one training job in its own process (helper of the distribution tests).

    python tests/distributed_job.py OPTIONS_JSON OUT_NPZ [--logical_cpus=N] [--job=finetune]
        [--nan_at_steps=3,7]

OPTIONS_JSON holds PretrainOptions (or, with --job=finetune, FinetuneOptions)
fields, with "config" as a preset dict; TF_CONFIG in the environment makes it
a multi-worker job. --nan_at_steps makes replica 0's loss NaN at those steps.
Writes the final trainable weights to OUT_NPZ and prints
the results as JSON on the last line.
"""

import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402


def main() -> None:
    options_json, out_npz = sys.argv[1], sys.argv[2]
    for arg in sys.argv[3:]:
        if arg.startswith("--logical_cpus="):
            n = int(arg.split("=")[1])
            cpu = tf.config.list_physical_devices("CPU")[0]
            tf.config.set_logical_device_configuration(
                cpu, [tf.config.LogicalDeviceConfiguration()] * n
            )
    finetune = "--job=finetune" in sys.argv[3:]
    from electra_tf.config import ElectraConfig

    values = json.loads(options_json)
    preset = values.pop("config", None)
    if preset:
        values["config"] = ElectraConfig.from_preset(preset.pop("preset"), **preset)
    captured = {}
    if finetune:
        import electra_tf.finetuning.job as job

        name, options_class, run = "ElectraTaskModel", job.FinetuneOptions, job.run_finetuning
    else:
        import electra_tf.pretraining.job as job

        name, options_class, run = "ElectraPretrainer", job.PretrainOptions, job.run_pretraining
    original = getattr(job, name)

    nan_steps = [
        int(step)
        for arg in sys.argv[3:]
        if arg.startswith("--nan_at_steps=")
        for step in arg.split("=")[1].split(",")
    ]

    class Capturing(original):  # keep a handle on the model to dump its weights
        def __init__(self, *a, **k):
            super().__init__(*a, **k)
            captured["model"] = self

        def _forward(self, batch, norms, seed, training, row_offset=0, step=None):
            out = super()._forward(batch, norms, seed, training, row_offset, step)
            if not nan_steps or step is None:
                return out
            # Only replica 0's loss turns NaN: the others must skip the step too.
            from electra_tf.modeling.step_model import replica_id

            bad = tf.reduce_any(tf.equal(step, nan_steps)) & tf.equal(replica_id(), 0)
            return {**out, "loss": out["loss"] * tf.where(bad, np.nan, 1.0)}

    setattr(job, name, Capturing)
    results = run(options_class(**values))
    model = captured["model"]
    np.savez(out_npz, **{v.path: np.asarray(v.numpy()) for v in model.trainable_variables})
    print(json.dumps({k: v for k, v in results.items() if k != "checkpoint"}, default=float))


if __name__ == "__main__":
    main()
