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
pipeline options), and with `positional=True` the arguments after the flags
(texts); either is otherwise an error.

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
import os
import re
import sys
import textwrap
from collections.abc import Callable, Sequence
from typing import Any

from absl import app, flags, logging

from electra_tf import console
from electra_tf import flags as electra_flags

FLAGS = flags.FLAGS
# How absl's required-flag validator words a flag that was not given.
_MISSING = re.compile(r"Flag --(\w+) must have a value other than None")


def main(
    define_flags: Callable[[], None],
    command: Callable[..., Any] | str,
    required: Sequence[str] = (),
    pass_through: bool = False,
    positional: bool = False,
    output_dirs: Sequence[str] = (),
    output_files: Sequence[str] = (),
) -> None:
    """Defines the flags, parses argv, runs `command`, exits with its status.

    `output_dirs` and `output_files` name the flags of paths the command
    writes: one that is an existing file where a directory goes (or the
    reverse) is bad input at parse time, before any work.
    """
    console.install()  # before TensorFlow starts logging
    before = _flag_names()
    define_flags()
    own = [name for name in _flag_names() if name not in before]
    if required:
        flags.mark_flags_as_required(required)
    for name in output_dirs:
        flags.register_validator(
            name,
            lambda path: not path or not os.path.isfile(path),
            f"--{name} is an existing file; it must be a directory (or a path to create)",
        )
    for name in output_files:
        flags.register_validator(
            name,
            lambda path: not path or not os.path.isdir(path),
            f"--{name} is an existing directory; it must be a file path",
        )
    if any(arg in HELP_ARGS for arg in sys.argv[1:]):
        print(help_text(_main_doc(), own, required))
        sys.exit(0)
    app.run(
        lambda argv: _run(argv, command, pass_through or positional),
        flags_parser=lambda argv: parse_flags(argv, known_only=pass_through),
    )


HELP_ARGS = ("--help", "-help", "-h", "--helpshort", "-?")


def _flag_names() -> list[str]:
    return list(dict.fromkeys(FLAGS[name].name for name in FLAGS))


def _main_doc() -> str:
    main_module = sys.modules.get("__main__")
    return (getattr(main_module, "__doc__", None) or "").strip()


def help_text(doc: str, names: Sequence[str], required: Sequence[str] = ()) -> str:
    """The command's own flags, grouped by stage (data, model, optimisation,
    checkpoints, evaluation, distribution), each with its default."""
    groups: dict[str, list[str]] = {}
    for name in sorted(names):
        groups.setdefault(electra_flags.STAGES.get(name, "options"), []).append(name)
    order = [*electra_flags.STAGE_ORDER, "options"]
    width = max((len(n) for n in names), default=0) + 4
    out = [doc, "", "Flags (--flagfile=FILE reads them from a file; --helpfull lists every flag):"]
    for stage in sorted(groups, key=order.index):
        out += ["", f"{stage}:"]
        for name in groups[stage]:
            flag = FLAGS[name]
            note = " (required)" if name in required else _default(flag)
            text = " ".join(f"{flag.help}{note}".split())
            lines = textwrap.wrap(text, 79 - width) or [""]
            out.append(f"  --{name:<{width - 4}}  {lines[0]}")
            out += [" " * (width + 2) + line for line in lines[1:]]
    return "\n".join(out)


def _default(flag) -> str:
    if flag.default is None or flag.default == "":
        return ""
    value = flag.default_as_str if hasattr(flag, "default_as_str") else repr(flag.default)
    return f" (default: {value.strip(chr(39))})"


def parse_flags(argv: list[str], known_only: bool = False) -> list[str]:
    """absl's parse, with flag errors as one `error:` line and exit status 2."""
    try:
        return FLAGS(argv, known_only=known_only)
    except flags.Error as e:
        name = getattr(e, "flagname", None)
        source = _flagfile_with(name, argv) if name else None
        if source:
            bad_input(f"{e} (in the flagfile {source}; --help lists the flags)")
        missing = _MISSING.findall(str(e))
        if missing:
            bad_input(
                f"{', '.join('--' + name for name in missing)} required (--help lists the flags)"
            )
        bad_input(f"{e} (--help lists the flags)")


def _flagfile_with(name: str, argv: list[str], seen: set[str] | None = None) -> str | None:
    """The --flagfile (possibly nested) that sets the flag `name`, if one does."""
    seen = set() if seen is None else seen
    for arg in argv:
        if not arg.startswith("--flagfile="):
            continue
        path = arg.split("=", 1)[1]
        if path in seen:
            continue
        seen.add(path)
        try:
            with open(path, encoding="utf-8") as f:
                lines = [line.strip() for line in f]
        except OSError:
            continue
        if any(re.match(rf"--(no)?{re.escape(name)}(=|$)", line) for line in lines):
            return path
        nested = _flagfile_with(name, lines, seen)
        if nested:
            return nested
    return None


def bad_input(message: str):
    """Ends the process as bad input: one line on standard error, status 2."""
    print(f"error: {message}", file=sys.stderr, flush=True)
    sys.exit(console.EXIT_BAD_INPUT)


def _run(argv: list[str], command: Callable[..., Any] | str, takes_args: bool) -> None:
    if len(argv) > 1 and not takes_args:
        bad_input(f"unexpected arguments: {' '.join(argv[1:])} (flags are written --name=value)")
    # absl INFO lines (TensorFlow's checkpoint notices, squad_lib's per-feature
    # logging) drown the progress lines the jobs print.
    logging.set_verbosity(logging.WARNING)
    if isinstance(command, str):
        module, _, function = command.partition(":")
        command = getattr(importlib.import_module(module), function)
    # absl exits with what this returns: the command's result is not a status.
    console.run_job((lambda: command(argv[1:])) if takes_args else command)
