"""The TFLite command: flags -> an id-input model or a MediaPipe file, and
the comparison report against the SavedModel.

`python -m electra_tf.tflite` runs `run_command` once its flags parsed.
"""

from __future__ import annotations

import json
import os

from electra_tf import flags as electra_flags
from electra_tf.io_utils import atomic_write_json
from electra_tf.serving import mediapipe
from electra_tf.serving.tflite_export import convert, parity_report, read_task_file
from electra_tf.tasks import get_task

FLAGS = electra_flags.FLAGS


def run_command() -> None:
    F = FLAGS
    target = F.target
    if target is None:
        task = read_task_file(F.saved_model)
        target = "classifier" if get_task(task["kind"]).edge_classifier(task) else "ids"
    if target == "ids":
        convert(F.saved_model, F.output, F.quantize, F.representative_data, F.num_calibration)
    else:
        mediapipe.convert(
            F.saved_model,
            F.output,
            target,
            F.quantize,
            F.representative_data,
            F.num_calibration,
            F.input_length,
            F.pooling,
        )
    print(f"wrote {F.output} ({os.path.getsize(F.output):,} bytes, --target={target})")
    if F.eval_data and target != "embedder":
        if target == "ids":
            report = parity_report(F.output, F.saved_model, F.eval_data)
        else:
            report = mediapipe.agreement_report(F.output, F.saved_model, F.eval_data)
        atomic_write_json(F.output + ".report.json", report)
        print(json.dumps(report, indent=2))
