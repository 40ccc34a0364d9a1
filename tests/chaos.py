"""A chaos driver: run a training command, preempt or kill it at random, restart
it, until it finishes.

Used by tests/test_faults.py (a short soak) and benchmarks/chaos.py (a long
one). Faults:

* "sigterm": SIGTERM once the log shows a randomly drawn step (a scheduler's
  preemption); the job must save and exit 143.
* "sigkill": SIGKILL at a random moment after training starts (a lost node).
* "sigkill_in_save": SIGKILL the moment a checkpoint write is seen in
  progress (TensorFlow's `ckpt-<step>_temp/` directory or a tower's temp
  file), so the kill lands inside the save.

After every fault the same command is started again; the driver records the
step each attempt reached, the checkpoint the next one resumed from and the
wall time.
"""

from __future__ import annotations

import dataclasses
import os
import random
import re
import signal
import subprocess
import threading
import time

_STEP_LINE = re.compile(r"^step\s+(\d+)/(\d+)")
_RESUMED = re.compile(r"Resumed from .*ckpt-(\d+)")


@dataclasses.dataclass
class Attempt:
    fault: str | None  # None: ran to the end
    returncode: int
    last_step_seen: int
    resumed_from: int  # 0: started from scratch
    seconds: float


def _in_save(model_dir: str) -> bool:
    try:
        names = os.listdir(model_dir)
    except FileNotFoundError:
        return False
    if any(n.endswith("_temp") for n in names):
        return True
    for tower in ("discriminator", "generator"):
        try:
            if any(n.startswith(".tmp-") for n in os.listdir(os.path.join(model_dir, tower))):
                return True
        except FileNotFoundError:
            pass
    return False


def run_attempt(
    command: list[str],
    model_dir: str,
    fault: str | None,
    rng: random.Random | None,
    total_steps: int,
    env: dict | None = None,
    cwd: str | None = None,
    timeout: float = 900,
) -> Attempt:
    """Runs `command` once, injecting `fault` (or none), and waits for it to exit."""
    start = time.time()
    proc = subprocess.Popen(
        command,
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    rng = rng or random.Random(0)
    state = {"step": 0, "resumed": 0, "sent": False}
    target = rng.randint(1, max(1, total_steps - 1))
    delay = rng.uniform(0.0, 3.0)
    killer = None
    if fault in ("sigkill", "sigkill_in_save"):
        trained = threading.Event()

        def kill() -> None:
            trained.wait(timeout)
            if fault == "sigkill":
                time.sleep(delay)
            else:
                deadline = time.time() + timeout
                while not _in_save(model_dir) and proc.poll() is None:
                    if time.time() > deadline:
                        return
                    time.sleep(0.0005)
            if proc.poll() is None:
                proc.kill()
                state["sent"] = True

        killer = threading.Thread(target=kill, daemon=True)
        killer.start()
    lines = []
    for line in proc.stdout:
        lines.append(line)
        resumed = _RESUMED.search(line)
        if resumed:
            state["resumed"] = int(resumed.group(1))
        m = _STEP_LINE.match(line)
        if not m:
            continue
        state["step"] = int(m.group(1))
        if killer is not None:
            trained.set()
        if fault == "sigterm" and not state["sent"] and state["step"] >= target:
            proc.send_signal(signal.SIGTERM)
            state["sent"] = True
    proc.wait(timeout)
    if killer is not None:
        trained.set()
        killer.join(5)
    if proc.returncode not in (0, 143, -signal.SIGKILL):
        raise RuntimeError(f"{' '.join(command)} exited {proc.returncode}:\n{''.join(lines[-40:])}")
    return Attempt(
        fault if state["sent"] else None,
        proc.returncode,
        state["step"],
        state["resumed"],
        time.time() - start,
    )


def run_with_faults(
    command: list[str],
    model_dir: str,
    faults: list[str],
    total_steps: int,
    seed: int = 0,
    env: dict | None = None,
    cwd: str | None = None,
    max_attempts: int = 50,
) -> list[Attempt]:
    """Injects `faults` in order (one per attempt), then reruns until exit 0."""
    rng = random.Random(seed)
    attempts: list[Attempt] = []
    pending = list(faults)
    while len(attempts) < max_attempts:
        fault = pending.pop(0) if pending else None
        attempt = run_attempt(command, model_dir, fault, rng, total_steps, env, cwd)
        attempts.append(attempt)
        if attempt.returncode == 0 and not pending:
            return attempts
    raise RuntimeError(f"not finished after {max_attempts} attempts: {attempts}")


def summary(attempts: list[Attempt], straight_seconds: float) -> dict:
    """Faults survived, steps lost per SIGKILL and the time overhead."""
    lost = [
        max(0, a.last_step_seen - b.resumed_from)
        for a, b in zip(attempts, attempts[1:])
        if a.fault and a.fault.startswith("sigkill")
    ]
    total = sum(a.seconds for a in attempts)
    return {
        "sigterm": sum(a.fault == "sigterm" for a in attempts),
        "sigkill": sum(a.fault == "sigkill" for a in attempts),
        "sigkill_in_save": sum(a.fault == "sigkill_in_save" for a in attempts),
        "attempts": len(attempts),
        "steps_lost_per_sigkill": lost,
        "seconds": total,
        "straight_seconds": straight_seconds,
        "overhead": total / straight_seconds - 1 if straight_seconds else None,
    }
