"""The error types that the entry points map to exit statuses.

Bad input is a `ValueError` (its message names the flag, file or field);
these two are the faults a job reports itself. They live here, below every
layer that raises them, so that the console can map them without importing
the engine or the checkpoint code.
"""

from __future__ import annotations


class CheckpointWriteError(OSError):
    """A checkpoint could not be written (disk full, file-size limit, permissions)."""


class TrainingHalted(RuntimeError):
    """The run stopped before its end for a reason a rerun alone will not fix."""
