r"""ELECTRA-Small pre-training throughput, side by side with each peer at its best.

    python benchmarks/pretrain_throughput.py [--rounds=3] [--steps=8] [--systems=...]

Systems, each timed in its own process, rounds interleaved, medians reported:

* ours               electra_tf ElectraPretrainer.train_step (graph mode)
* ours_xla           the same with --jit_compile
* ours_bf16          the same with --mixed_precision=bfloat16
* hf                 Hugging Face transformers in PyTorch as a user would tune
                     it: ElectraForMaskedLM generator + ElectraForPreTraining
                     discriminator sharing the embeddings, SDPA attention, the
                     MLM head on masked positions only, fused AdamW
* hf_compile         the same with the loss computation under torch.compile
* hf_bf16            `hf` under torch.autocast(bfloat16)
* model_garden       official.nlp ElectraPretrainTask's model and loss (tf_keras),
                     its AdamW with global clipping, in a tf.function
* model_garden_bf16  the same under the mixed_bfloat16 policy

All: batch 32, sequence 128, 19 masked positions, generator 1/4 width, the
same recipe (MLM CE + 50 x RTD BCE, clip 1.0, AdamW). Also measured in the
same run: each framework's 2048^2 matmul rate in float32 and bfloat16 (the
peaks), the model FLOPs per training sequence (analytic, 3 x forward), and
each system's model-FLOPs utilisation (MFU) against its own framework's
peak in its own precision, so the figures compare across machines whose
TF/PyTorch peaks differ. The float32 ratio is our best float32 system
against the fastest float32 peer. A system whose precision the CPU only
emulates (bf16 without AVX512_BF16/AMX) is timed over fewer steps.

`--max_isa=avx2` caps every framework's vector kernels at AVX2 (oneDNN,
MKL, ATen, XLA), which measures how the ratio holds on a CPU without
AVX-512: there the TF and PyTorch float32 peaks are level. It runs the
float32 systems only; bf16 cannot be emulated that way.

Needs the bench extras: pip install -e ".[bench]".
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

BATCH, LENGTH, N_MASK = 32, 128, 19
VOCAB, HIDDEN, LAYERS, HEADS, FFN, EMB = 30522, 256, 12, 4, 1024, 128
G_HIDDEN, G_HEADS, G_FFN = 64, 1, 256
# Every system, in the order each round runs them, with the matmul peak its
# MFU is taken against: its own framework's, in its own precision, measured
# in the same run.
PEAK_OF = {
    "ours": "tf_float32",
    "ours_xla": "tf_float32",
    "ours_bf16": "tf_bfloat16",
    "hf": "torch_float32",
    "hf_compile": "torch_float32",
    "hf_bf16": "torch_bfloat16",
    "model_garden": "tf_float32",
    "model_garden_bf16": "tf_bfloat16",
}
SYSTEMS = tuple(PEAK_OF)
F32_PEERS = ("hf", "hf_compile", "model_garden")
BF16_PEERS = ("hf_bf16", "model_garden_bf16")
# Environment that caps each framework's runtime-dispatched kernels at an
# ISA. TensorFlow's own (Eigen) kernels are compiled for AVX only, so its
# oneDNN and XLA are what dispatch wider; PyTorch dispatches in ATen,
# MKL (its float32 GEMM), oneDNN, and inductor's generated code (which
# follows ATEN_CPU_CAPABILITY).
ISA_CAPS = {
    "native": {},
    "avx2": {
        "ONEDNN_MAX_CPU_ISA": "AVX2",
        "MKL_ENABLE_INSTRUCTIONS": "AVX2",
        "ATEN_CPU_CAPABILITY": "avx2",
        "XLA_FLAGS": "--xla_cpu_max_isa=AVX2",
    },
}


def model_flops_per_sequence(mlm_positions: int = N_MASK) -> float:
    """Analytic training FLOPs (3 x forward matmul FLOPs) for one sequence."""

    def tower(h, layers, ffn):
        per_token = 2 * EMB * h if h != EMB else 0  # embeddings_project
        per_token += layers * (2 * 4 * h * h + 2 * 2 * h * ffn + 2 * 2 * LENGTH * h)
        return per_token * LENGTH

    forward = tower(HIDDEN, LAYERS, FFN) + tower(G_HIDDEN, LAYERS, G_FFN)
    forward += mlm_positions * (2 * G_HIDDEN * EMB + 2 * EMB * VOCAB)  # MLM head
    forward += LENGTH * (2 * HIDDEN * HIDDEN + 2 * HIDDEN)  # RTD head
    return 3.0 * forward


def _fake_batch(np, seed=0):
    rng = np.random.default_rng(seed)
    ids = rng.integers(1000, VOCAB, (BATCH, LENGTH)).astype("int32")
    ids[:, 0] = 101
    ids[:, -1] = 102
    pos = np.sort(
        np.stack(
            [rng.choice(np.arange(1, LENGTH - 1), N_MASK, replace=False) for _ in range(BATCH)]
        ),
        1,
    )
    orig = np.take_along_axis(ids, pos, 1)
    masked = ids.copy()
    np.put_along_axis(masked, pos, 103, 1)
    return {
        "input_ids": masked,
        "input_mask": np.ones((BATCH, LENGTH), "int32"),
        "segment_ids": np.zeros((BATCH, LENGTH), "int32"),
        "masked_lm_positions": pos.astype("int32"),
        "masked_lm_ids": orig.astype("int32"),
        "masked_lm_weights": np.ones((BATCH, N_MASK), "float32"),
    }


def _time_steps(step, steps, budget_s=120.0):
    """(first step's seconds, median step seconds) over up to `steps` timed
    steps after two warm-ups; at least 3, fewer than `steps` once `budget_s`
    is spent (a system whose precision this CPU only emulates is slow)."""
    t0 = time.perf_counter()
    step()
    first = time.perf_counter() - t0
    step()  # a second warm-up step
    times: list[float] = []
    while len(times) < steps and (len(times) < 3 or sum(times) < budget_s):
        t = time.perf_counter()
        step()
        times.append(time.perf_counter() - t)
    return first, statistics.median(times)


def worker_ours(steps, jit, policy="float32"):
    import keras
    import numpy as np
    import tensorflow as tf

    from electra_tf.config import ElectraConfig
    from electra_tf.modeling import ElectraPretrainer
    from electra_tf.optimization import create_optimizer

    t_launch = time.perf_counter()
    keras.mixed_precision.set_dtype_policy(policy)
    model = ElectraPretrainer(ElectraConfig.from_preset("small"), jit_compile=jit)
    model.compile(optimizer=create_optimizer("adamw", 5e-4, 100, 10000))
    model.build_all()
    batch = {k: tf.constant(v) for k, v in _fake_batch(np).items()}
    model.make_train_function()
    train = model.train_function
    ds = tf.data.Dataset.from_tensors(batch).repeat()
    it = iter(ds)

    def step():
        logs = train(it)
        float(logs["loss"])

    first, per_step = _time_steps(step, steps)
    return {
        "seq_per_s": BATCH / per_step,
        "first_step_s": first,
        "launch_to_first_step_s": time.perf_counter() - t_launch - per_step * (steps + 1),
    }


def worker_hf(steps, compiled=False, bf16=False):
    """The fastest PyTorch step a user would write: SDPA attention, the MLM
    head on masked positions only, fused AdamW, optionally torch.compile and
    bf16 autocast."""
    import numpy as np
    import torch
    from transformers import ElectraConfig, ElectraForMaskedLM, ElectraForPreTraining

    torch.set_num_threads(os.cpu_count() or 1)
    torch.manual_seed(0)
    common = dict(
        vocab_size=VOCAB,
        embedding_size=EMB,
        max_position_embeddings=512,
        attn_implementation="sdpa",
    )
    disc = ElectraForPreTraining(
        ElectraConfig(
            hidden_size=HIDDEN,
            num_hidden_layers=LAYERS,
            num_attention_heads=HEADS,
            intermediate_size=FFN,
            **common,
        )
    )
    gen = ElectraForMaskedLM(
        ElectraConfig(
            hidden_size=G_HIDDEN,
            num_hidden_layers=LAYERS,
            num_attention_heads=G_HEADS,
            intermediate_size=G_FFN,
            **common,
        )
    )
    assert disc.config._attn_implementation == "sdpa"
    gen.electra.embeddings = disc.electra.embeddings  # shared embeddings
    gen.generator_lm_head.weight = disc.electra.embeddings.word_embeddings.weight  # tied
    params = list({id(p): p for p in list(gen.parameters()) + list(disc.parameters())}.values())
    decay = [p for p in params if p.ndim > 1]
    no_decay = [p for p in params if p.ndim <= 1]
    opt = torch.optim.AdamW(
        [{"params": decay, "weight_decay": 0.01}, {"params": no_decay, "weight_decay": 0.0}],
        lr=5e-4,
        betas=(0.9, 0.999),
        eps=1e-6,
        fused=True,
    )
    b = {
        k: torch.from_numpy(v).long() if v.dtype != np.float32 else torch.from_numpy(v)
        for k, v in _fake_batch(np).items()
    }
    gen.train()
    disc.train()

    def losses(b):
        hidden = gen.electra(
            input_ids=b["input_ids"],
            attention_mask=b["input_mask"],
            token_type_ids=b["segment_ids"],
        ).last_hidden_state
        idx = b["masked_lm_positions"][..., None].expand(-1, -1, hidden.shape[-1])
        logits = gen.generator_lm_head(gen.generator_predictions(torch.gather(hidden, 1, idx)))
        w = b["masked_lm_weights"]
        ce = torch.nn.functional.cross_entropy(
            logits.float().reshape(-1, VOCAB), b["masked_lm_ids"].reshape(-1), reduction="none"
        )
        mlm = (ce * w.reshape(-1)).sum() / w.sum()
        with torch.no_grad():
            u = torch.rand_like(logits, dtype=torch.float32)
            sampled = torch.argmax(logits.float() - torch.log(-torch.log(u + 1e-9) + 1e-9), -1)
            original = b["input_ids"].scatter(1, b["masked_lm_positions"], b["masked_lm_ids"])
            corrupted = original.scatter(1, b["masked_lm_positions"], sampled)
            labels = (corrupted != original).float()
        dl = disc(
            input_ids=corrupted, attention_mask=b["input_mask"], token_type_ids=b["segment_ids"]
        ).logits
        bce = torch.nn.functional.binary_cross_entropy_with_logits(
            dl.float(), labels, reduction="none"
        )
        mask = b["input_mask"].float()
        return mlm + 50.0 * (bce * mask).sum() / mask.sum()

    if compiled and os.environ.get("ATEN_CPU_CAPABILITY") == "avx2":
        # Under --max_isa=avx2 on an AVX-512 host, inductor (torch 2.13)
        # generates some int64 index loops for 16 lanes but compiles them
        # for AVX2, and their scatter segfaults (no upstream report found);
        # giving it the capped width explicitly makes the two agree.
        import torch._inductor.config

        torch._inductor.config.cpp.simdlen = 256
    forward = torch.compile(losses) if compiled else losses

    def step():
        opt.zero_grad(set_to_none=True)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            loss = forward(b)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        float(loss)

    first, per_step = _time_steps(step, steps)
    return {"seq_per_s": BATCH / per_step, "first_step_s": first}


def worker_model_garden(steps, policy="float32"):
    import numpy as np
    import tensorflow as tf
    import tf_keras

    tf_keras.mixed_precision.set_global_policy(policy)
    from official.modeling import optimization
    from official.nlp.configs import electra, encoders
    from official.nlp.data import pretrain_dataloader
    from official.nlp.tasks import electra_task

    def enc(h, heads, ffn):
        return encoders.EncoderConfig(
            type="bert",
            bert=encoders.BertEncoderConfig(
                vocab_size=VOCAB,
                hidden_size=h,
                num_layers=LAYERS,
                num_attention_heads=heads,
                intermediate_size=ffn,
                embedding_size=EMB,
                max_position_embeddings=512,
            ),
        )

    cfg = electra_task.ElectraPretrainConfig(
        model=electra.ElectraPretrainerConfig(
            num_masked_tokens=N_MASK,
            sequence_length=LENGTH,
            generator_encoder=enc(G_HIDDEN, G_HEADS, G_FFN),
            discriminator_encoder=enc(HIDDEN, HEADS, FFN),
            cls_heads=[],
        ),
        train_data=pretrain_dataloader.BertPretrainDataConfig(use_next_sentence_label=False),
    )
    task = electra_task.ElectraPretrainTask(cfg)
    model = task.build_model()
    opt_cfg = optimization.OptimizationConfig(
        {
            "optimizer": {
                "type": "adamw",
                "adamw": {
                    "weight_decay_rate": 0.01,
                    "epsilon": 1e-6,
                    "exclude_from_weight_decay": ["LayerNorm", "layer_norm", "bias"],
                    "global_clipnorm": 1.0,
                },
            },
            "learning_rate": {
                "type": "polynomial",
                "polynomial": {"initial_learning_rate": 5e-4, "decay_steps": 10000},
            },
            "warmup": {"type": "polynomial", "polynomial": {"warmup_steps": 100}},
        }
    )
    opt = optimization.OptimizerFactory(opt_cfg).build_optimizer(
        optimization.OptimizerFactory(opt_cfg).build_learning_rate()
    )
    metrics = task.build_metrics()
    fb = _fake_batch(np)
    inputs = {
        "input_word_ids": fb["input_ids"],
        "input_mask": fb["input_mask"],
        "input_type_ids": fb["segment_ids"],
        "masked_lm_positions": fb["masked_lm_positions"],
        "masked_lm_ids": fb["masked_lm_ids"],
        "masked_lm_weights": fb["masked_lm_weights"],
    }
    inputs = {k: tf.constant(v) for k, v in inputs.items()}

    @tf.function
    def train():
        with tf.GradientTape() as tape:
            outputs = model(inputs, training=True)
            loss = task.build_losses(labels=inputs, model_outputs=outputs, metrics=metrics)
        grads = tape.gradient(loss, model.trainable_variables)
        opt.apply_gradients(zip(grads, model.trainable_variables))
        return loss

    def step():
        float(train())

    first, per_step = _time_steps(step, steps)
    return {"seq_per_s": BATCH / per_step, "first_step_s": first}


def _matmul_gflops(run, n, budget_s=10.0):
    run()
    reps, t = 0, time.perf_counter()
    while reps < 10 and (reps < 2 or time.perf_counter() - t < budget_s):
        run()
        reps += 1
    return 2 * n**3 * reps / (time.perf_counter() - t) / 1e9


def worker_matmul(bf16: bool = True):
    """Each framework's 2048^2 matmul rate in float32 and bfloat16: the peaks
    its MFU is measured against."""
    import numpy as np
    import tensorflow as tf

    n = 2048
    x = np.random.default_rng(0).normal(size=(n, n)).astype("float32")
    mm = tf.function(lambda a: tf.matmul(a, a))
    out = {}
    precisions = ("float32", "bfloat16") if bf16 else ("float32",)
    for name in precisions:
        a = tf.cast(tf.constant(x), getattr(tf, name))
        out[f"tf_{name}_gflops"] = _matmul_gflops(lambda a=a: mm(a).numpy(), n)
    try:
        import torch
    except ImportError:
        return out
    torch.set_num_threads(os.cpu_count() or 1)
    for name in precisions:
        # nn.Linear's path: on CPUs without native bf16, `a @ a` in bf16 falls
        # back to a kernel ~50x slower than the oneDNN one linear takes.
        a = torch.from_numpy(x).to(getattr(torch, name))
        out[f"torch_{name}_gflops"] = _matmul_gflops(
            lambda a=a: torch.nn.functional.linear(a, a), n
        )
    return out


def run_worker(name: str, steps: int) -> dict:
    try:
        return _run_worker(name, steps)
    except Exception as e:  # a peer that cannot run this configuration
        message = " ".join(str(e).split())
        return {"error": f"{type(e).__name__}: {message[-600:]}"}


def _run_worker(name: str, steps: int) -> dict:
    if name == "ours":
        return worker_ours(steps, jit=False)
    if name == "ours_xla":
        return worker_ours(steps, jit=True)
    if name == "ours_bf16":
        return worker_ours(steps, jit=False, policy="mixed_bfloat16")
    if name == "hf":
        return worker_hf(steps)
    if name == "hf_compile":
        return worker_hf(steps, compiled=True)
    if name == "hf_bf16":
        return worker_hf(steps, bf16=True)
    if name == "model_garden":
        return worker_model_garden(steps)
    if name == "model_garden_bf16":
        return worker_model_garden(steps, policy="mixed_bfloat16")
    if name == "matmul":
        # A capped oneDNN aborts the process on a bf16 matmul (no AVX2
        # primitive) instead of falling back as it does on a real AVX2 CPU.
        return worker_matmul(bf16="ONEDNN_MAX_CPU_ISA" not in os.environ)
    raise ValueError(name)


def machine() -> dict:
    """The CPU and the instruction sets that decide bf16 speed."""
    info = {"cpus": os.cpu_count()}
    try:
        with open("/proc/cpuinfo") as f:
            text = f.read()
    except OSError:
        return info
    for line in text.splitlines():
        if line.startswith("model name"):
            info["model"] = line.split(":", 1)[1].strip()
        if line.startswith("flags"):
            flags = set(line.split(":", 1)[1].split())
            info["isa"] = sorted(flags & {"avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile"})
            break
    return info


def summarize(runs: dict[str, list[dict]], systems: list[str], max_isa: str = "native") -> dict:
    """Medians, MFU against each system's own framework and precision peak,
    and the ratios the README quotes (also per round, to show their spread)."""

    def med(name, key):
        vals = [x[key] for x in runs.get(name, []) if key in x]
        return statistics.median(vals) if vals else None

    flops = model_flops_per_sequence()
    peaks = {
        key: round(med("matmul", f"{key}_gflops"), 1)
        for key in ("tf_float32", "tf_bfloat16", "torch_float32", "torch_bfloat16")
        if med("matmul", f"{key}_gflops")
    }
    table = {
        "machine": {**machine(), "max_isa": max_isa},
        "model_gflop_per_sequence": round(flops / 1e9, 2),
        "matmul_peak_gflops": peaks,
    }
    for name in systems:
        sps = med(name, "seq_per_s")
        if sps is None:
            continue
        peak = peaks.get(PEAK_OF[name])
        table[name] = {
            "seq_per_s": round(sps, 2),
            "mfu": round(sps * flops / 1e9 / peak, 3) if peak else None,
            "mfu_peak": PEAK_OF[name],
            "first_step_s": round(med(name, "first_step_s"), 1),
            "rounds": [round(x["seq_per_s"], 2) for x in runs[name]],
        }
        launch = med(name, "launch_to_first_step_s")
        if launch:
            table[name]["launch_to_first_step_s"] = round(launch, 1)

    def ratio(ours, peers):
        ours = [s for s in ours if s in table]
        peers = [s for s in peers if s in table]
        if not ours or not peers:
            return None
        best = max(table[s]["seq_per_s"] for s in ours)
        per_round = [
            round(
                max(runs[s][r]["seq_per_s"] for s in ours)
                / max(runs[s][r]["seq_per_s"] for s in peers),
                2,
            )
            for r in range(min(len(runs[s]) for s in ours + peers))
        ]
        return {
            "median": round(best / max(table[s]["seq_per_s"] for s in peers), 2),
            "per_round": per_round,
        }

    table["ratios"] = {
        "float32_ours_to_fastest_peer": ratio(["ours", "ours_xla"], F32_PEERS),
        "bf16_ours_to_our_float32": ratio(["ours_bf16"], ["ours"]),
        "bf16_ours_to_fastest_peer_bf16": ratio(["ours_bf16"], BF16_PEERS),
    }
    return table


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--systems", default=",".join(SYSTEMS))
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--json", help="Also write the results here.")
    parser.add_argument(
        "--max_isa",
        choices=sorted(ISA_CAPS),
        default="native",
        help="Cap every framework's kernels at this ISA (float32 systems only).",
    )
    args = parser.parse_args()
    if args.worker:
        print("RESULT " + json.dumps(run_worker(args.worker, args.steps)))
        return

    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", **ISA_CAPS[args.max_isa])
    here = os.path.dirname(os.path.abspath(__file__))
    env["PYTHONPATH"] = os.path.dirname(here) + os.pathsep + env.get("PYTHONPATH", "")

    errors: dict[str, str] = {}

    def launch(name):
        t = time.perf_counter()
        r = subprocess.run(
            [sys.executable, __file__, f"--worker={name}", f"--steps={args.steps}"],
            env=env,
            capture_output=True,
            text=True,
        )
        lines = [line for line in r.stdout.splitlines() if line.startswith("RESULT ")]
        if r.returncode or not lines:
            print(f"{name} failed:\n{r.stderr[-3000:]}", file=sys.stderr)
            return None
        out = json.loads(lines[-1][7:])
        if "error" in out:
            print(f"{name} cannot run: {out['error']}", file=sys.stderr)
            errors[name] = out["error"]
            return None
        out["process_s"] = time.perf_counter() - t
        return out

    systems = [s for s in args.systems.split(",") if s]
    if args.max_isa != "native":
        dropped = [s for s in systems if PEAK_OF[s].endswith("bfloat16")]
        if dropped:
            print(
                f"--max_isa={args.max_isa}: skipping {', '.join(dropped)} (bf16 "
                "cannot be emulated by capping the ISA)",
                file=sys.stderr,
            )
        systems = [s for s in systems if s not in dropped]
    runs: dict[str, list[dict]] = {s: [] for s in systems + ["matmul"]}
    for r in range(args.rounds):
        for name in ["matmul", *systems]:
            if name in errors:
                continue
            out = launch(name)
            if out:
                runs[name].append(out)
                shown = {k: round(v, 2) for k, v in out.items()}
                print(f"round {r + 1} {name}: {shown}", flush=True)

    table = summarize(runs, systems, args.max_isa)
    for name, error in errors.items():
        table[name] = {"error": error}
    print(json.dumps(table, indent=2))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(table, f, indent=2)


if __name__ == "__main__":
    main()
