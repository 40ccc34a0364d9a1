"""Runs one training job in its own process (helper of the distribution tests).

    python tests/distributed_job.py OPTIONS_JSON OUT_NPZ [--logical_cpus=N] [--job=finetune]

OPTIONS_JSON holds PretrainOptions (or, with --job=finetune, FinetuneOptions)
fields, with "config" as a preset dict; TF_CONFIG in the environment makes it
a multi-worker job. Writes the final trainable weights to OUT_NPZ and prints
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

    class Capturing(original):  # keep a handle on the model to dump its weights
        def __init__(self, *a, **k):
            super().__init__(*a, **k)
            captured["model"] = self

    setattr(job, name, Capturing)
    results = run(options_class(**values))
    model = captured["model"]
    np.savez(out_npz, **{v.path: np.asarray(v.numpy()) for v in model.trainable_variables})
    print(json.dumps({k: v for k, v in results.items() if k != "checkpoint"}, default=float))


if __name__ == "__main__":
    main()
