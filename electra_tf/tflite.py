r"""TFLite for phones: a MediaPipe-ready classifier or embedder, or an id-input model.

    python -m electra_tf.tflite --saved_model=serving/sst2/1 --output=edge/sst2.tflite \
        --quantize=dynamic --eval_data=sst2_like/dev.tsv

--target:
  classifier (default for single-text classifiers): raw text in, MediaPipe
      `TextClassifier` metadata (WordPiece vocab, label names) in the file;
      inputs padded to --input_length. Android/iOS/web load it as is.
  embedder   (any export): the encoder, [CLS] or mean pooled (--pooling),
      L2-normalised, with MediaPipe `TextEmbedder` metadata.
  ids        (classification/regression, pairs included): token ids in
      (`input_ids`, `input_mask`, `segment_ids`, int32 [1, tokens], unpadded),
      `logits` and `probabilities` (or `predictions`) out; `vocab.txt` and
      `tokenizer.json` go beside it for `electra_tf/tokenizer.py` or a custom
      runtime.

--quantize: none (float32), float16 (weights), dynamic (int8 weights, float
activations) or int8 (weights and activations, calibrated on
--representative_data). With --eval_data a report against the SavedModel is
printed and written to `<output>.report.json` (classifier: through
MediaPipe's own runtime).
"""

from __future__ import annotations

import json
import os

from electra_tf import console


def main(argv: list[str]) -> None:
    from absl import app, flags

    from electra_tf.io_utils import atomic_write_json
    from electra_tf.serving import mediapipe
    from electra_tf.serving.tflite import convert, parity_report, read_task_file

    F = flags.FLAGS
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {' '.join(argv[1:])}")
    for name in ("saved_model", "output"):
        if not getattr(F, name):
            raise app.UsageError(f"--{name} is required")

    def job() -> None:
        target = F.target
        if target is None:
            task = read_task_file(F.saved_model)
            single_text = task["kind"] == "classification" and not task.get("pair")
            target = "classifier" if single_text else "ids"
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

    console.run_job(job)


def run() -> None:
    console.install()  # before TensorFlow starts logging
    from absl import app

    from electra_tf import flags as electra_flags

    electra_flags.define_tflite_flags()
    app.run(main)


if __name__ == "__main__":
    run()
