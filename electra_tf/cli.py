"""The one way an entry point runs: quiet console, its flags, the command,
and the exit status.

Every `python -m ...` command of the package (`electra_tf.pretrain`,
`data_prep.build_vocab`, ...) is a module that defines its flags and calls
`main`:

    def run() -> None:
        cli.main(define_flags, "electra_tf.pretraining.command:run_command",
                 required=("train_data", "model_dir"))

`command` is a callable, or "module:function" imported only after the flags
parsed, so that `--help` and flag errors answer without loading TensorFlow.
It takes no arguments and reads the parsed flags.

Exit statuses (the same for every command; `console` maps the faults a job
reports itself):
    0   done
    2   bad input: an unknown or missing flag, an argument that is not a
        flag, a file or value that is wrong. One `error: ...` line that names
        the flag or file, no traceback.
    3   training halted itself (non-finite steps); a checkpoint was saved
    74  a checkpoint could not be written; older ones are intact
    143 preempted (SIGTERM); rerun the same command to resume
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Sequence
from typing import Any

from absl import app, flags, logging

from electra_tf import console

FLAGS = flags.FLAGS


def main(
    define_flags: Callable[[], None],
    command: Callable[[], Any] | str,
    required: Sequence[str] = (),
) -> None:
    """Defines the flags, parses argv, runs `command`, exits with its status."""
    console.install()  # before TensorFlow starts logging
    define_flags()
    if required:
        flags.mark_flags_as_required(required)
    app.run(lambda argv: _run(argv, command), flags_parser=parse_flags)


def parse_flags(argv: list[str]) -> list[str]:
    """absl's parse, with flag errors as one `error:` line and exit status 2."""
    try:
        return FLAGS(argv)
    except flags.Error as e:
        bad_input(f"{e} (--help lists the flags)")


def bad_input(message: str):
    """Ends the process as bad input: one line on standard error, status 2."""
    print(f"error: {message}", file=sys.stderr, flush=True)
    sys.exit(console.EXIT_BAD_INPUT)


def _run(argv: list[str], command: Callable[[], Any] | str) -> Any:
    if len(argv) > 1:
        bad_input(f"unexpected arguments: {' '.join(argv[1:])} (flags are written --name=value)")
    # absl INFO lines (TensorFlow's checkpoint notices, squad_lib's per-feature
    # logging) drown the progress lines the jobs print.
    logging.set_verbosity(logging.WARNING)
    if isinstance(command, str):
        module, _, function = command.partition(":")
        command = getattr(importlib.import_module(module), function)
    return console.run_job(command)
