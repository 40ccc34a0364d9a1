"""A readable console for the command-line entry points.

TensorFlow prints start-up lines that say nothing to a user of this package:
on a machine without a GPU every process logs `failed call to cuInit` at
ERROR level (so `TF_CPP_MIN_LOG_LEVEL=2` does not hide it, and level 3 would
hide real errors too), plus oneDNN and XLA notices; a fresh matplotlib
announces its font cache. `install()` runs before TensorFlow is imported and
drops exactly those lines from standard error; every other line passes
through unchanged, in order. `ELECTRA_TF_VERBOSE=1` turns the filter off.

The entry points call `install()` first thing in `run()`: the noisy lines
come when TensorFlow first touches a device, after import. (The package's
`__init__` sets `TF_CPP_MIN_LOG_LEVEL=1` if unset, which keeps the C++ INFO
lines of the import itself away.)
"""

from __future__ import annotations

import atexit
import os
import re
import sys
import threading

from electra_tf.errors import CheckpointWriteError, TrainingHalted

# Each pattern is a known, harmless start-up message; nothing else is dropped.
NOISE = re.compile(
    rb"failed call to cuInit"
    rb"|Unable to register cu(DNN|FFT|BLAS) factory"
    rb"|computation placer already registered"
    rb"|oneDNN custom operations are on"
    rb"|This TensorFlow binary is optimized to use available CPU instructions"
    rb"|To enable the following instructions: .* rebuild TensorFlow"
    rb"|All log messages before absl::InitializeLog\(\) is called are written to STDERR"
    rb"|Compiled cluster using XLA!"
    rb"|Matplotlib is building the font cache"
    rb"|oneDNN supports DT_INT64 only on platforms with AVX-512"
    rb"|tf_tfl_flatbuffer_helpers.cc:\d+\] Ignored (output_format|drop_control_dependency)"
    rb"|MLIR V1 optimization pass is not enabled"
)

_state: dict = {}
# Written by this process at exit to stop the reader. End-of-file cannot do
# it: every process spawned meanwhile (multiprocessing workers, its resource
# tracker) inherited descriptor 2 and holds the pipe open until it exits.
_END = b"\0electra_tf.console end\0"


def is_noise(line: bytes) -> bool:
    """True for a known start-up message (a line of standard error, without its newline)."""
    return bool(NOISE.search(line))


def install() -> None:
    """Filters the known start-up noise out of file descriptor 2 for this process.

    C++ logging writes to the descriptor directly, so the filter sits there:
    standard error becomes a pipe whose reader forwards every line that is not
    noise to the original stream. At exit the original stream is restored and
    the reader drains what is left.
    """
    if _state or os.environ.get("ELECTRA_TF_VERBOSE"):
        return
    try:
        original = os.dup(2)
        read_fd, write_fd = os.pipe()
        os.dup2(write_fd, 2)
        end_fd = os.dup(write_fd)  # not inherited by children (os.dup's default)
        os.close(write_fd)
    except OSError:  # no usable descriptor 2 (a daemon, an odd launcher): leave it be
        return

    def pump() -> None:
        pending = b""
        while True:
            chunk = os.read(read_fd, 65536)
            if not chunk:
                break
            pending += chunk
            ended = _END in pending
            if ended:
                pending = pending.split(_END, 1)[0]
            *lines, pending = pending.split(b"\n")
            kept = [line + b"\n" for line in lines if not is_noise(line)]
            if kept:
                os.write(original, b"".join(kept))
            if ended:
                break
        if pending and not is_noise(pending):
            os.write(original, pending)

    reader = threading.Thread(target=pump, name="stderr-filter", daemon=True)
    reader.start()
    _state.update(original=original, reader=reader, end_fd=end_fd)
    atexit.register(_restore)


def _restore() -> None:
    """Puts the original standard error back once the reader has forwarded
    everything this process wrote."""
    sys.stderr.flush()
    os.dup2(_state["original"], 2)
    os.write(_state["end_fd"], _END)
    os.close(_state["end_fd"])
    _state["reader"].join(timeout=5)


# Exit statuses of the entry points (README's reliability table lists them).
EXIT_BAD_INPUT = 2  # a flag, file or record is wrong: the message names it
EXIT_HALTED = 3  # training stopped itself (non-finite steps); a checkpoint was saved
EXIT_IO = 74  # EX_IOERR: a checkpoint could not be written; older ones are intact
EXIT_PREEMPTED = 143  # 128 + SIGTERM, what schedulers expect of a job they stopped
EXIT_INTERRUPTED = 130  # 128 + SIGINT: Ctrl-C


def run_job(job):
    """Runs `job()` for an entry point and maps how it ended to an exit status.

    Bad input (ValueError) and the faults the jobs report themselves print one
    `error: ...` line, not a traceback; a preempted run exits 143 so that
    schedulers requeue it. Returns what `job()` returned otherwise.
    """
    try:
        result = job()
    except KeyboardInterrupt:  # a second Ctrl-C, or one outside the training loop
        _fail("interrupted", EXIT_INTERRUPTED)
    except ValueError as e:
        _fail(e, EXIT_BAD_INPUT)
    except TrainingHalted as e:
        _fail(e, EXIT_HALTED)
    except CheckpointWriteError as e:
        _fail(e, EXIT_IO)
    if isinstance(result, dict) and result.get("preempted"):
        sys.exit(EXIT_INTERRUPTED if result.get("signal") == "SIGINT" else EXIT_PREEMPTED)
    return result


def _fail(error: Exception, status: int):
    print(f"error: {error}", file=sys.stderr, flush=True)
    sys.exit(status)
