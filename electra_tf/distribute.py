"""The one strategy factory: a tf.distribute.Strategy from flag values.

Wraps Model Garden's `official.common.distribute_utils` (plain TF, no
tf_keras layers involved) so the names match Model Garden's flags.
"""

from __future__ import annotations

import glob
import os
import socket
from typing import TYPE_CHECKING
from urllib.parse import urlparse

if TYPE_CHECKING:
    import tensorflow as tf

# The strategies this package's Keras 3 fit loop can drive (the flag's choices).
STRATEGIES = (
    "default",
    "one_device",
    "mirrored",
    "multi_worker_mirrored",
    "tpu",
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
    # Imported here: the flags (electra_tf.flags) read STRATEGIES, and a
    # command's --help answers without loading TensorFlow.
    import tensorflow as tf

    if name == "parameter_server":
        raise ValueError(
            "--distribution_strategy=parameter_server is not supported: Keras 3's fit loop "
            "has no ParameterServerStrategy coordinator; use multi_worker_mirrored"
        )
    if name not in STRATEGIES:
        raise ValueError(f"--distribution_strategy={name!r}; expected one of {STRATEGIES}")
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "tpu":
        check_tpu_reachable(tpu)
    if name == "mirrored" and num_gpus == 0:
        # Model Garden mirrors over CPU:0 only; mirror over every logical CPU
        # (tf.config.set_logical_device_configuration), which is how the
        # multi-replica path is exercised on a machine without GPUs.
        cpus = [d.name for d in tf.config.list_logical_devices("CPU")]
        return tf.distribute.MirroredStrategy(cpus)
    from official.common import distribute_utils

    return distribute_utils.get_distribution_strategy(
        distribution_strategy=name,
        num_gpus=num_gpus,
        all_reduce_alg=all_reduce_alg,
        tpu_address=tpu,
    )


def check_tpu_reachable(address: str | None, timeout: float = 5.0) -> None:
    """Fails fast, instead of hanging in the TPU resolver, when no TPU is there.

    Accepts "grpc://host:port" / "host:port" (a TPU worker), "local" or None
    (a Cloud TPU VM: needs TPU devices on this machine), or a Cloud TPU name
    (resolved through the GCE metadata server, which must answer).
    """
    if address in (None, "", "local"):
        if not (glob.glob("/dev/accel*") or glob.glob("/dev/vfio/[0-9]*")):
            raise ValueError(
                "--distribution_strategy=tpu: no TPU devices on this machine; pass "
                "--tpu=grpc://HOST:8470 or a Cloud TPU name"
            )
        return
    parsed = urlparse(address if "://" in address else f"grpc://{address}")
    if parsed.port is None:
        # A TPU name: needs the metadata server of a Google Cloud VM.
        host, port = os.environ.get("GCE_METADATA_HOST", "metadata.google.internal"), 80
        what = f"the GCE metadata server ({host}) that resolves --tpu={address}"
    else:
        host, port = parsed.hostname, parsed.port
        what = f"the TPU at --tpu={address}"
    try:
        with socket.create_connection((host, port), timeout=timeout):
            pass
    except OSError as e:
        raise ValueError(f"--distribution_strategy=tpu: cannot reach {what}: {e}") from e
