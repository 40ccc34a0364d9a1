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

from electra_tf import cli
from electra_tf import flags as electra_flags


def run() -> None:
    cli.main(
        electra_flags.define_tflite_flags,
        "electra_tf.serving.tflite_command:run_command",
        required=("saved_model", "output"),
        output_files=("output",),
    )


if __name__ == "__main__":
    run()
