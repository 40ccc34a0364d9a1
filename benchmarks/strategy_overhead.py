r"""Step-time overhead of MirroredStrategy and MultiWorkerMirroredStrategy.

    python benchmarks/strategy_overhead.py [--steps=8] [--preset=small]

Times the ELECTRA train step (global batch 32, sequence 128) under:
* default: one process, no distribution machinery;
* mirrored: one process, 2 logical CPU devices (2 replicas of 16);
* multi_worker: 2 processes on 127.0.0.1 (TF_CONFIG), 1 replica of 16 each.
On a 2-core machine the replicas share the same cores, so this measures the
cost of the distribution machinery (all-reduce, per-replica dispatch), not a
speed-up. Reported as median step time and ratio to default.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))


def worker(mode: str, steps: int, preset: str) -> dict:
    import tensorflow as tf

    if mode == "mirrored":
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration()] * 2
        )
    sys.path.insert(0, HERE)
    import numpy as np
    from pretrain_throughput import _fake_batch

    from electra_tf.config import ElectraConfig
    from electra_tf.distribute import get_strategy
    from electra_tf.modeling import ElectraPretrainer
    from electra_tf.optimization import create_optimizer

    name = {"default": "default", "mirrored": "mirrored", "multi_worker": "multi_worker_mirrored"}[
        mode
    ]
    strategy = get_strategy(name)
    with strategy.scope():
        model = ElectraPretrainer(ElectraConfig.from_preset(preset))
        model.compile(optimizer=create_optimizer("adamw", 5e-4, 100, 10000))
        model.build_all()
    batch = _fake_batch(np)
    ds = tf.data.Dataset.from_tensors(batch).repeat()
    if mode != "default":
        per_replica = 32 // strategy.num_replicas_in_sync
        ds = strategy.distribute_datasets_from_function(
            lambda ctx: tf.data.Dataset.from_tensors(
                {k: v[:per_replica] for k, v in batch.items()}
            ).repeat()
        )
    model.make_train_function()
    it = iter(ds)
    for _ in range(2):
        float(np.mean(model.train_function(it)["loss"]))
    times = []
    for _ in range(steps):
        t = time.perf_counter()
        float(np.mean(model.train_function(it)["loss"]))
        times.append(time.perf_counter() - t)
    return {"step_s": statistics.median(times), "replicas": strategy.num_replicas_in_sync}


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--preset", default="small")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print("RESULT " + json.dumps(worker(args.worker, args.steps, args.preset)), flush=True)
        return
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=os.path.dirname(HERE))
    env.pop("TF_CONFIG", None)

    def launch(mode, extra_env=None):
        return subprocess.Popen(
            [
                sys.executable,
                __file__,
                f"--worker={mode}",
                f"--steps={args.steps}",
                f"--preset={args.preset}",
            ],
            env={**env, **(extra_env or {})},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def result(proc):
        out, err = proc.communicate()
        lines = [x for x in out.splitlines() if x.startswith("RESULT ")]
        if not lines:
            raise RuntimeError(err[-3000:])
        return json.loads(lines[-1][7:])

    table = {"default": result(launch("default")), "mirrored": result(launch("mirrored"))}
    workers = [f"127.0.0.1:{_port()}", f"127.0.0.1:{_port()}"]
    procs = [
        launch(
            "multi_worker",
            {
                "TF_CONFIG": json.dumps(
                    {"cluster": {"worker": workers}, "task": {"type": "worker", "index": i}}
                )
            },
        )
        for i in range(2)
    ]
    table["multi_worker"] = max((result(p) for p in procs), key=lambda r: r["step_s"])
    base = table["default"]["step_s"]
    for row in table.values():
        row["ratio_to_default"] = round(row["step_s"] / base, 2)
        row["step_s"] = round(row["step_s"], 3)
    print(json.dumps(table, indent=2))


if __name__ == "__main__":
    main()
