r"""SavedModel export for TF Serving from the command line.

    python -m electra_tf.export --checkpoint=runs/sst2/final --export_dir=serving/sst2

writes `serving/sst2/<version>/` (the next integer version unless --version
is given; an existing version is never touched). The signatures, outputs and
assets are described in `electra_tf.serving.saved_model`.
"""

from __future__ import annotations

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
    path = console.run_job(
        lambda: export(
            F.checkpoint,
            F.export_dir,
            F.version,
            F.vocab,
            F.max_seq_length,
            F.max_answer_length,
            batch_shards=F.batch_shards,
        )
    )
    print(f"exported {path}")


def run() -> None:
    console.install()  # before TensorFlow starts logging
    from absl import app

    from electra_tf import flags as electra_flags

    electra_flags.define_export_flags()
    app.run(main)


if __name__ == "__main__":
    run()
