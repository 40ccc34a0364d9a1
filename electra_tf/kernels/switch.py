"""The one switch between this package's CPU kernels and the stock ops.

The default (`None`) turns the fast kernels on when no GPU or TPU is
visible: they were tuned for oneDNN on CPUs and never measured on
accelerators. The switch is read when a layer is traced, so set it before
building the model (the jobs do, from `--fast_kernels`).
"""

from __future__ import annotations

import tensorflow as tf

_FAST: bool | None = None


def set_fast_kernels(enabled: bool | None) -> None:
    """On, off, or None for the default (on for CPU-only machines)."""
    global _FAST
    _FAST = enabled


def fast_kernels_enabled() -> bool:
    """Whether layers traced now use the fast kernels."""
    if _FAST is not None:
        return _FAST
    return not (tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("TPU"))
