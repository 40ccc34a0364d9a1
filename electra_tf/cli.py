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
It takes no arguments and reads the parsed flags; with `pass_through=True`
it takes the arguments that are not this command's flags (Apache Beam's
pipeline options), which are otherwise an error.

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
import re
import sys
from collections.abc import Callable, Sequence
from typing import Any

from absl import app, flags, logging

from electra_tf import console

FLAGS = flags.FLAGS
# How absl's required-flag validator words a flag that was not given.
_MISSING = re.compile(r"Flag --(\w+) must have a value other than None")


def main(
    define_flags: Callable[[], None],
    command: Callable[..., Any] | str,
    required: Sequence[str] = (),
    pass_through: bool = False,
) -> None:
    """Defines the flags, parses argv, runs `command`, exits with its status."""
    console.install()  # before TensorFlow starts logging
    define_flags()
    if required:
        flags.mark_flags_as_required(required)
    app.run(
        lambda argv: _run(argv, command, pass_through),
        flags_parser=lambda argv: parse_flags(argv, known_only=pass_through),
    )


def parse_flags(argv: list[str], known_only: bool = False) -> list[str]:
    """absl's parse, with flag errors as one `error:` line and exit status 2."""
    try:
        return FLAGS(argv, known_only=known_only)
    except flags.Error as e:
        missing = _MISSING.findall(str(e))
        if missing:
            bad_input(
                f"{', '.join('--' + name for name in missing)} required (--help lists the flags)"
            )
        bad_input(f"{e} (--help lists the flags)")


def bad_input(message: str):
    """Ends the process as bad input: one line on standard error, status 2."""
    print(f"error: {message}", file=sys.stderr, flush=True)
    sys.exit(console.EXIT_BAD_INPUT)


def _run(argv: list[str], command: Callable[..., Any] | str, pass_through: bool) -> None:
    if len(argv) > 1 and not pass_through:
        bad_input(f"unexpected arguments: {' '.join(argv[1:])} (flags are written --name=value)")
    # absl INFO lines (TensorFlow's checkpoint notices, squad_lib's per-feature
    # logging) drown the progress lines the jobs print.
    logging.set_verbosity(logging.WARNING)
    if isinstance(command, str):
        module, _, function = command.partition(":")
        command = getattr(importlib.import_module(module), function)
    # absl exits with what this returns: the command's result is not a status.
    console.run_job((lambda: command(argv[1:])) if pass_through else command)
