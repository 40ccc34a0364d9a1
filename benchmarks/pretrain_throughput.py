r"""ELECTRA-Small pre-training throughput, side by side with the peers.

    python benchmarks/pretrain_throughput.py [--rounds=3] [--steps=8] [--systems=...]

Systems, each timed in its own process, rounds interleaved, medians reported:

* ours            electra_tf ElectraPretrainer.train_step (graph mode)
* ours_xla        the same with --jit_compile
* ours_bf16       the same with --mixed_precision=bfloat16 (not in the ratio:
                  the peers run float32)
* hf_full         Hugging Face transformers in PyTorch, ElectraForMaskedLM
                  generator + ElectraForPreTraining discriminator sharing the
                  embeddings, MLM logits over all positions (as users assemble it)
* hf_masked       the same with the MLM head applied only at masked positions
* model_garden    official.nlp.modeling.models.ElectraPretrainer (tf_keras),
                  the task's loss, AdamW, in a tf.function

All: batch 32, sequence 128, 19 masked positions, generator 1/4 width, the
same recipe (MLM CE + 50 x RTD BCE, clip 1.0, AdamW). Also measured in the
same run: the machine's float32 matmul peak (2048^2, TensorFlow and
PyTorch), the model FLOPs per training sequence (analytic, 3 x forward) and
each system's model-FLOPs utilisation (MFU) against the better peak.
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
SYSTEMS = ("ours", "ours_xla", "ours_bf16", "hf_full", "hf_masked", "model_garden")


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


def _time_steps(step, steps):
    t0 = time.perf_counter()
    step()
    first = time.perf_counter() - t0
    step()  # a second warm-up step
    times = []
    for _ in range(steps):
        t = time.perf_counter()
        step()
        times.append(time.perf_counter() - t)
    return first, statistics.median(times)


def worker_ours(steps, jit, policy="float32"):
    import keras
    import numpy as np
    import tensorflow as tf

    from electra_tf.config import ElectraConfig
    from electra_tf.optimization import create_optimizer
    from electra_tf.pretraining import ElectraPretrainer

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


def worker_hf(steps, masked_only):
    import numpy as np
    import torch
    from transformers import ElectraConfig, ElectraForMaskedLM, ElectraForPreTraining

    torch.set_num_threads(os.cpu_count() or 1)
    torch.manual_seed(0)
    common = dict(vocab_size=VOCAB, embedding_size=EMB, max_position_embeddings=512)
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
    gen.electra.embeddings = disc.electra.embeddings  # shared embeddings
    gen.generator_lm_head.weight = disc.electra.embeddings.word_embeddings.weight  # tied
    params = {id(p): p for p in list(gen.parameters()) + list(disc.parameters())}.values()
    decay = [p for p in params if p.ndim > 1]
    no_decay = [p for p in params if p.ndim <= 1]
    opt = torch.optim.AdamW(
        [{"params": decay, "weight_decay": 0.01}, {"params": no_decay, "weight_decay": 0.0}],
        lr=5e-4,
        betas=(0.9, 0.999),
        eps=1e-6,
    )
    b = {
        k: torch.from_numpy(v).long() if v.dtype != np.float32 else torch.from_numpy(v)
        for k, v in _fake_batch(np).items()
    }
    gen.train()
    disc.train()

    def step():
        opt.zero_grad(set_to_none=True)
        hidden = gen.electra(
            input_ids=b["input_ids"],
            attention_mask=b["input_mask"],
            token_type_ids=b["segment_ids"],
        ).last_hidden_state
        if masked_only:
            idx = b["masked_lm_positions"][..., None].expand(-1, -1, hidden.shape[-1])
            logits = gen.generator_lm_head(gen.generator_predictions(torch.gather(hidden, 1, idx)))
        else:
            logits = gen.generator_lm_head(gen.generator_predictions(hidden))
            idx = b["masked_lm_positions"][..., None].expand(-1, -1, logits.shape[-1])
            logits = torch.gather(logits, 1, idx)
        w = b["masked_lm_weights"]
        ce = torch.nn.functional.cross_entropy(
            logits.reshape(-1, VOCAB), b["masked_lm_ids"].reshape(-1), reduction="none"
        )
        mlm = (ce * w.reshape(-1)).sum() / w.sum()
        with torch.no_grad():
            u = torch.rand_like(logits)
            sampled = torch.argmax(logits + -torch.log(-torch.log(u + 1e-9) + 1e-9), -1)
            original = b["input_ids"].scatter(1, b["masked_lm_positions"], b["masked_lm_ids"])
            corrupted = original.scatter(1, b["masked_lm_positions"], sampled)
            labels = (corrupted != original).float()
        dl = disc(
            input_ids=corrupted, attention_mask=b["input_mask"], token_type_ids=b["segment_ids"]
        ).logits
        bce = torch.nn.functional.binary_cross_entropy_with_logits(dl, labels, reduction="none")
        mask = b["input_mask"].float()
        loss = mlm + 50.0 * (bce * mask).sum() / mask.sum()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(list(params), 1.0)
        opt.step()
        float(loss)

    first, per_step = _time_steps(step, steps)
    return {"seq_per_s": BATCH / per_step, "first_step_s": first}


def worker_model_garden(steps):
    import numpy as np
    import tensorflow as tf
    import tf_keras
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

    del tf_keras

    def step():
        float(train())

    first, per_step = _time_steps(step, steps)
    return {"seq_per_s": BATCH / per_step, "first_step_s": first}


def worker_matmul():
    import numpy as np
    import tensorflow as tf

    n = 2048
    a = tf.constant(np.random.default_rng(0).normal(size=(n, n)).astype("float32"))
    mm = tf.function(lambda x: tf.matmul(x, x))
    mm(a).numpy()
    t = time.perf_counter()
    reps = 10
    for _ in range(reps):
        mm(a).numpy()
    tf_gflops = 2 * n**3 * reps / (time.perf_counter() - t) / 1e9
    out = {"tf_matmul_gflops": tf_gflops}
    try:
        import torch

        torch.set_num_threads(os.cpu_count() or 1)
        x = torch.randn(n, n)
        x @ x
        t = time.perf_counter()
        for _ in range(reps):
            x @ x
        out["torch_matmul_gflops"] = 2 * n**3 * reps / (time.perf_counter() - t) / 1e9
    except ImportError:
        pass
    return out


def run_worker(name: str, steps: int) -> dict:
    if name == "ours":
        return worker_ours(steps, jit=False)
    if name == "ours_xla":
        return worker_ours(steps, jit=True)
    if name == "ours_bf16":
        return worker_ours(steps, jit=False, policy="mixed_bfloat16")
    if name == "hf_full":
        return worker_hf(steps, masked_only=False)
    if name == "hf_masked":
        return worker_hf(steps, masked_only=True)
    if name == "model_garden":
        return worker_model_garden(steps)
    if name == "matmul":
        return worker_matmul()
    raise ValueError(name)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--systems", default=",".join(SYSTEMS))
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--json", help="Also write the results here.")
    args = parser.parse_args()
    if args.worker:
        print("RESULT " + json.dumps(run_worker(args.worker, args.steps)))
        return

    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    here = os.path.dirname(os.path.abspath(__file__))
    env["PYTHONPATH"] = os.path.dirname(here) + os.pathsep + env.get("PYTHONPATH", "")

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
        out["process_s"] = time.perf_counter() - t
        return out

    systems = [s for s in args.systems.split(",") if s]
    runs: dict[str, list[dict]] = {s: [] for s in systems + ["matmul"]}
    for r in range(args.rounds):
        for name in ["matmul", *systems]:
            out = launch(name)
            if out:
                runs[name].append(out)
                shown = {k: round(v, 2) for k, v in out.items()}
                print(f"round {r + 1} {name}: {shown}", flush=True)

    def med(name, key):
        vals = [x[key] for x in runs[name] if key in x]
        return statistics.median(vals) if vals else None

    flops = model_flops_per_sequence()
    peak = max(
        filter(None, [med("matmul", "tf_matmul_gflops"), med("matmul", "torch_matmul_gflops")])
    )
    table = {
        "model_gflop_per_sequence": round(flops / 1e9, 2),
        "matmul_peak_gflops": round(peak, 1),
        "tf_matmul_gflops": round(med("matmul", "tf_matmul_gflops"), 1),
    }
    if med("matmul", "torch_matmul_gflops"):
        table["torch_matmul_gflops"] = round(med("matmul", "torch_matmul_gflops"), 1)
    for name in systems:
        sps = med(name, "seq_per_s")
        if sps is None:
            continue
        table[name] = {
            "seq_per_s": round(sps, 2),
            "mfu": round(sps * flops / 1e9 / peak, 3),
            "first_step_s": round(med(name, "first_step_s"), 1),
        }
        if med(name, "launch_to_first_step_s"):
            table[name]["launch_to_first_step_s"] = round(med(name, "launch_to_first_step_s"), 1)
    peers = [table[s]["seq_per_s"] for s in systems if s in table and not s.startswith("ours")]
    if peers and "ours" in table:
        best_ours = max(table[s]["seq_per_s"] for s in ("ours", "ours_xla") if s in table)
        table["ratio_best_ours_to_fastest_peer"] = round(best_ours / max(peers), 2)
    print(json.dumps(table, indent=2))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(table, f, indent=2)


if __name__ == "__main__":
    main()
