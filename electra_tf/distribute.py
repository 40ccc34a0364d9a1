"""The one strategy factory: a tf.distribute.Strategy from flag values.

Wraps Model Garden's `official.common.distribute_utils` (plain TF, no
tf_keras layers involved) so the names match Model Garden's flags.
"""

from __future__ import annotations

import tensorflow as tf

STRATEGIES = (
    "default",
    "one_device",
    "mirrored",
    "multi_worker_mirrored",
    "tpu",
    "parameter_server",
)


def get_strategy(
    name: str = "default",
    num_gpus: int = 0,
    tpu: str | None = None,
    all_reduce_alg: str | None = None,
) -> tf.distribute.Strategy:
    """Creates the strategy named by `--distribution_strategy`.

    Args:
        name: One of `STRATEGIES`. "default" is TensorFlow's no-op strategy
            (one device, no distribution machinery).
        num_gpus: GPUs for one_device / mirrored (0 = CPU).
        tpu: TPU address for "tpu".
        all_reduce_alg: "nccl" / "hierarchical_copy" (mirrored) or "ring" /
            "nccl" (multi-worker); None picks TensorFlow's default.

    Raises:
        ValueError: unknown name, or a strategy that cannot drive this
            package's Keras 3 `fit` loop.
    """
    if name not in STRATEGIES:
        raise ValueError(f"--distribution_strategy={name!r}; expected one of {STRATEGIES}")
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "parameter_server":
        raise ValueError(
            "--distribution_strategy=parameter_server is not supported: Keras 3's fit loop "
            "has no ParameterServerStrategy coordinator; use multi_worker_mirrored"
        )
    from official.common import distribute_utils

    return distribute_utils.get_distribution_strategy(
        distribution_strategy=name,
        num_gpus=num_gpus,
        all_reduce_alg=all_reduce_alg,
        tpu_address=tpu,
    )
