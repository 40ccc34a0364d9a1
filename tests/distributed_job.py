"""Runs one pre-training job in its own process (helper of test_distribution.py).

    python tests/distributed_job.py OPTIONS_JSON OUT_NPZ [--logical_cpus=N]

OPTIONS_JSON holds PretrainOptions fields (with "config" as a preset dict);
TF_CONFIG in the environment makes it a multi-worker job. Writes the final
trainable weights to OUT_NPZ and prints the results as JSON on the last line.
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
    from electra_tf.config import ElectraConfig
    from electra_tf.pretraining.job import PretrainOptions, run_pretraining

    values = json.loads(options_json)
    preset = values.pop("config")
    values["config"] = ElectraConfig.from_preset(preset.pop("preset"), **preset)
    captured = {}
    import electra_tf.pretraining.job as trainer

    original = trainer.ElectraPretrainer

    class Capturing(original):  # keep a handle on the model to dump its weights
        def __init__(self, *a, **k):
            super().__init__(*a, **k)
            captured["model"] = self

    trainer.ElectraPretrainer = Capturing
    results = run_pretraining(PretrainOptions(**values))
    model = captured["model"]
    np.savez(out_npz, **{v.path: np.asarray(v.numpy()) for v in model.trainable_variables})
    print(json.dumps({k: v for k, v in results.items() if k != "checkpoint"}, default=float))


if __name__ == "__main__":
    main()
