r"""SavedModel export for TF Serving: raw text in, predictions out.

    python -m electra_tf.export --checkpoint=runs/sst2/final --export_dir=serving/sst2

writes `serving/sst2/<version>/` (TF Serving's layout; the next integer
version unless --version is given; an existing version is never touched).

Signatures (all with a variable batch size):
    serving_default   `text` (+ `text_b` for pair tasks and QA, where text is
                      the question and text_b the passage), tf.string [batch];
                      tokenized in-graph by tf-text's FastBertTokenizer.
    predict_ids       `input_ids`, `input_mask`, `segment_ids` int32
                      [batch, length]: for servers without the tf-text ops and
                      clients that tokenize themselves.
    tokenize          the text signature's tokenization alone (ids, mask,
                      segments), to check a client's own tokenizer against.
    encode, replaced_token_probs
                      text signatures of a pre-trained discriminator (no head).

Outputs: classification `logits`, `probabilities`, `label_ids`, `labels`;
regression `predictions`; tagging `tag_ids`, `tags` (per word-piece, with
`tokens`); QA `start_index`, `end_index`, `score` (and `null_score`,
`has_answer` for SQuAD 2.0), plus `answer` (the passage's own text) from the
text signature. Assets: vocab.txt, electra_config.json, task.json, labels.txt.

The text signature needs tf-text's ops (FastBertNormalize,
FastWordpieceTokenizeWithOffsets): load tensorflow-text's op libraries in the
server (`import tensorflow_text` in Python; `_fast_bert_normalizer.so` and
`_fast_wordpiece_tokenizer.so` with TF Serving's --custom_op_paths or
`Env::LoadDynamicLibrary` in C++). `predict_ids` needs only core ops.
"""

from __future__ import annotations

import sys

from electra_tf import console


def main(argv: list[str]) -> None:
    from absl import app, flags

    from electra_tf.serving.saved_model import export

    F = flags.FLAGS
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {' '.join(argv[1:])}")
    for name in ("checkpoint", "export_dir"):
        if not getattr(F, name):
            raise app.UsageError(f"--{name} is required")
    try:
        path = export(
            F.checkpoint,
            F.export_dir,
            F.version,
            F.vocab,
            F.max_seq_length,
            F.max_answer_length,
        )
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    print(f"exported {path}")


def run() -> None:
    console.install()  # before TensorFlow starts logging
    from absl import app

    from electra_tf import flags as electra_flags

    electra_flags.define_export_flags()
    app.run(main)


if __name__ == "__main__":
    run()
