"""Chaos soak: pre-train `tiny` while preempting and killing it at random.

    python benchmarks/chaos.py --data=demo_out/pretrain_data --steps=200 --faults=12

Runs the same `electra_tf.pretrain` command uninterrupted, then again with
`--faults` faults drawn at random (SIGTERM at a random step, SIGKILL at a
random moment, SIGKILL the moment a checkpoint write is seen in progress),
restarting it after each until it finishes. Prints and writes
(`results_chaos.json`) the faults survived, the steps lost per SIGKILL, the
time overhead and whether the final weights equal the uninterrupted run's.
tests/test_faults.py runs a short form of this in the suite.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import random
import sys
import tempfile

import numpy as np
import tensorflow as tf

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

import chaos  # noqa: E402  (tests/chaos.py, the driver the suite uses too)


def command(model_dir: str, data: str, steps: int, save_every: int) -> list[str]:
    return [
        sys.executable,
        "-m",
        "electra_tf.pretrain",
        "--flagfile=configs/demo.flags",
        f"--train_data={data}/pretrain-*",
        "--eval_data=",
        f"--model_dir={model_dir}",
        f"--num_train_steps={steps}",
        "--log_every_steps=1",
        f"--save_checkpoints_steps={save_every}",
    ]


def max_difference(a: str, b: str) -> float:
    ra, rb = tf.train.load_checkpoint(a), tf.train.load_checkpoint(b)
    worst = 0.0
    for name in ra.get_variable_to_shape_map():
        if "OBJECT_GRAPH" in name or "save_counter" in name:
            continue
        x, y = np.asarray(ra.get_tensor(name)), np.asarray(rb.get_tensor(name))
        if x.dtype.kind in "fiu":
            worst = max(worst, float(np.max(np.abs(x.astype(np.float64) - y), initial=0.0)))
    return worst


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(REPO / "demo_out" / "pretrain_data"))
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--save_every", type=int, default=10)
    parser.add_argument("--faults", type=int, default=12)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=str(REPO / "benchmarks" / "results_chaos.json"))
    args = parser.parse_args()

    env = dict(os.environ, PYTHONPATH=str(REPO))
    work = pathlib.Path(tempfile.mkdtemp(prefix="chaos_"))
    straight_dir = str(work / "straight")
    straight = chaos.run_attempt(
        command(straight_dir, args.data, args.steps, args.save_every),
        straight_dir,
        None,
        None,
        args.steps,
        env=env,
        cwd=str(REPO),
    )
    rng = random.Random(args.seed)
    faults = [rng.choice(["sigterm", "sigkill", "sigkill_in_save"]) for _ in range(args.faults)]
    chaos_dir = str(work / "chaos")
    attempts = chaos.run_with_faults(
        command(chaos_dir, args.data, args.steps, args.save_every),
        chaos_dir,
        faults,
        args.steps,
        seed=args.seed,
        env=env,
        cwd=str(REPO),
    )
    final = f"ckpt-{args.steps}"
    result = chaos.summary(attempts, straight.seconds)
    result.update(
        steps=args.steps,
        save_every=args.save_every,
        attempts_detail=[vars(a) for a in attempts],
        max_weight_difference=max_difference(
            os.path.join(straight_dir, final), os.path.join(chaos_dir, final)
        ),
        work_dir=str(work),
    )
    lost = result["steps_lost_per_sigkill"]
    print(
        f"{args.steps} steps, {result['attempts']} runs: survived {result['sigterm']} SIGTERM, "
        f"{result['sigkill']} SIGKILL and {result['sigkill_in_save']} SIGKILL inside a save; "
        f"steps redone per SIGKILL {np.mean(lost) if lost else 0:.1f} (max {max(lost or [0])}); "
        f"time {result['seconds']:.0f} s vs {straight.seconds:.0f} s uninterrupted "
        f"(+{100 * result['overhead']:.0f}%); final weights differ by at most "
        f"{result['max_weight_difference']:.2e}"
    )
    with open(args.out, "w", encoding="utf-8") as f:
        json.dump(result, f, indent=2)


if __name__ == "__main__":
    main()
