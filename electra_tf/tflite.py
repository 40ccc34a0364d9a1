r"""TFLite conversion of an exported classifier, for on-device inference.

    python -m electra_tf.tflite --saved_model=serving/sst2/1 --output=edge/model.tflite \
        --quantize=dynamic --eval_data=sst2_like/dev.tsv

The model takes token ids (`input_ids`, `input_mask`, `segment_ids`, int32
[1, tokens], unpadded, at most max_seq_length) and returns `logits` and `probabilities`. Next to it go
`vocab.txt` and `tokenizer.json` (lower-casing, length, special ids, labels):
tokenize on the device with `electra_tf/tokenizer.py` (pure Python, no
TensorFlow), which gives the in-graph tokenizer's ids.

--quantize: none (float32), float16 (weights), dynamic (int8 weights, float
activations) or int8 (weights and activations, calibrated on
--representative_data; ids stay int32). With --eval_data a parity report
against the SavedModel (the Keras model) is printed and written to
`<output>.report.json`: file size, max |logit difference|, label agreement,
accuracy and median latency per example.
"""

from __future__ import annotations

import json
import os
import sys

from electra_tf import console


def main(argv: list[str]) -> None:
    from absl import app, flags

    from electra_tf.io_utils import atomic_write_json
    from electra_tf.serving.tflite import convert, parity_report

    F = flags.FLAGS
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {' '.join(argv[1:])}")
    for name in ("saved_model", "output"):
        if not getattr(F, name):
            raise app.UsageError(f"--{name} is required")
    try:
        convert(F.saved_model, F.output, F.quantize, F.representative_data, F.num_calibration)
        print(f"wrote {F.output} ({os.path.getsize(F.output):,} bytes)")
        if F.eval_data:
            report = parity_report(F.output, F.saved_model, F.eval_data)
            atomic_write_json(F.output + ".report.json", report)
            print(json.dumps(report, indent=2))
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)


def run() -> None:
    console.install()  # before TensorFlow starts logging
    from absl import app

    from electra_tf import flags as electra_flags

    electra_flags.define_tflite_flags()
    app.run(main)


if __name__ == "__main__":
    run()
