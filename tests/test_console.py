"""The entry points' standard-error filter."""

from __future__ import annotations

from helpers import run_python

from electra_tf import console

_CHILD = r"""
import multiprocessing as mp, os, sys, time
from electra_tf import console
console.install()

def idle():
    time.sleep(30)

if __name__ == "__main__":
    os.write(2, b"failed call to cuInit: UNKNOWN ERROR (303)\n")
    os.write(2, b"a real warning\n")
    # A process that outlives this one's work and holds descriptor 2 open.
    ctx = mp.get_context("spawn")
    child = ctx.Process(target=idle, daemon=True)
    child.start()
    sys.stderr.write("last line, no newline")
"""


def test_noise_is_recognised_and_real_lines_are_not():
    assert console.is_noise(b"E0000 ... failed call to cuInit: INTERNAL: CUDA error")
    assert not console.is_noise(b"error: --train_data matches no file")
    for line in (
        b"E tensorflow/core/util/util.cc:131] oneDNN supports DT_INT64 only on platforms "
        b"with AVX-512. Falling back to the default Eigen-based implementation if present.",
        b"W0000 00:00:1796457580.410422   19265 tf_tfl_flatbuffer_helpers.cc:364] Ignored "
        b"output_format.",
        b"W0000 00:00:1796457580.410492   19265 tf_tfl_flatbuffer_helpers.cc:367] Ignored "
        b"drop_control_dependency.",
        b"I0000 00:00:1796457580.452330   19265 mlir_graph_optimization_pass.cc:437] MLIR V1 "
        b"optimization pass is not enabled",
    ):
        assert console.is_noise(line), line


def test_filtered_stderr_keeps_real_lines_while_a_child_holds_the_pipe(tmp_path):
    script = tmp_path / "child.py"
    script.write_text(_CHILD)
    done = run_python(script, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "cuInit" not in done.stderr
    assert "a real warning\n" in done.stderr
    # The daemon child holds the pipe's write end, so end-of-file never comes
    # while this process exits: the unterminated last line is only forwarded
    # if the reader stops on the exit marker (waiting for EOF, it gave up
    # after 5 s and lost the line).
    assert done.stderr.endswith("last line, no newline")
