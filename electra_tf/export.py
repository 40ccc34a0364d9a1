r"""SavedModel export for TF Serving from the command line.

    python -m electra_tf.export --checkpoint=runs/sst2/final --export_dir=serving/sst2

writes `serving/sst2/<version>/` (the next integer version unless --version
is given; an existing version is never touched). The signatures, outputs and
assets are described in `electra_tf.serving.saved_model`.
"""

from __future__ import annotations

from electra_tf import cli
from electra_tf import flags as electra_flags


def run() -> None:
    cli.main(
        electra_flags.define_export_flags,
        "electra_tf.serving.export_command:run_command",
        required=("checkpoint", "export_dir"),
        output_dirs=("export_dir",),
    )


if __name__ == "__main__":
    run()
