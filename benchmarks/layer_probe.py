r"""Per-layer linear probes of a learning study's encoders: what each layer holds.

    python benchmarks/layer_probe.py --work_dir=<the study's --work_dir>

The study's own probes (`--freeze_encoder`) train the task's head on the
last layer. This reads every layer's states, from the embeddings' output
(layer 0) to the last, of random init and of each tower the study kept,
and fits a multinomial logistic regression on them (scikit-learn, to
convergence, so the score is the features' and not an optimiser's): on each
sentence's mean state for the SST-2-like probe set (the [CLS] state of
layer 0 is the same for every sentence), on every word's first piece for
WNUT-16. The L2 strength is chosen on the study's validation split; the
score is the dev set's, in the task's own metric as `electra_tf.finetune`
computes it. The probe is deterministic, so one number per layer.

Writes benchmarks/results_layer_probe.json.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import learning  # noqa: E402  (the study's layout, settings and report helpers)

TASKS = ("probe_sst2", "probe_wnut")
# The probe's inverse L2 strength (scikit-learn's C), chosen on validation.
INVERSE_L2 = (0.1, 1.0)


def study_of(work: str) -> learning.Study:
    """The settings the study in `work` was run with (its study.json)."""
    path = os.path.join(work, "study.json")
    if not os.path.exists(path):
        sys.exit(f"--work_dir={work}: no study.json (run benchmarks/learning.py there first)")
    fields = learning.read_json(path)
    return learning.Study(**{k: learning._as_field(v) for k, v in fields.items()})


def kept_starts(work: str) -> list[str]:
    """random, then every tower the study kept."""
    towers = os.path.join(work, "towers")
    kept = [s for s in os.listdir(towers) if learning.tower_ready(work, s)]
    return sorted(["random", *kept], key=learning.start_order)


def encoder_of(work: str, study: learning.Study, vocab_size: int, start: str):
    from electra_tf.checkpoints import find_tower, load_encoder
    from electra_tf.modeling import ElectraBackbone

    if start == "random":
        import keras

        keras.utils.set_random_seed(0)
        encoder = ElectraBackbone(learning.model_config(study, vocab_size, 0.0))
        encoder.build()
        return encoder
    return load_encoder(find_tower(learning.tower_dir(work, *learning._split_start(start))))


def read_split(data_dir: str, info: dict, split: str) -> dict[str, np.ndarray]:
    import tensorflow as tf

    from electra_tf.tasks.info import feature_spec

    spec = feature_spec(info, info["max_seq_length"])
    records = tf.data.TFRecordDataset(os.path.join(data_dir, f"{split}.tfrecord"))
    batches = list(records.map(lambda r: tf.io.parse_single_example(r, spec)).batch(512))
    return {k: np.concatenate([b[k].numpy() for b in batches]) for k in spec}


def layer_features(encoder, split: dict[str, np.ndarray], tokens: bool) -> list[np.ndarray]:
    """Per layer: [examples, hidden] mean states, or [labelled pieces, hidden]."""
    from electra_tf.tasks.info import IGNORE

    inputs = {k: split[k] for k in ("input_ids", "input_mask", "segment_ids")}
    keep = split["label_ids"] != IGNORE if tokens else None
    batches = []
    for i in range(0, len(inputs["input_ids"]), 256):
        states = encoder.hidden_states({k: v[i : i + 256] for k, v in inputs.items()})
        if tokens:
            batches.append([s.numpy()[keep[i : i + 256]] for s in states])
        else:
            mask = inputs["input_mask"][i : i + 256, :, None].astype(np.float32)
            batches.append([(s.numpy() * mask).sum(1) / mask.sum(1) for s in states])
    return [np.concatenate(layer) for layer in zip(*batches)]


def fit_probe(x: np.ndarray, y: np.ndarray, c: float, num_labels: int):
    """Multinomial logistic regression on standardised features (the train
    split's statistics), fitted to convergence: a convex probe has one
    answer, so what it scores is the features', not an optimiser's."""
    from sklearn.linear_model import LogisticRegression

    mean, scale = x.mean(0), x.std(0) + 1e-6
    probe = LogisticRegression(C=c, max_iter=2000).fit((x - mean) / scale, y)

    def logits(z: np.ndarray) -> np.ndarray:
        """[n, num_labels]; a label the train split never has is never predicted."""
        out = np.full((len(z), num_labels), -np.inf, np.float32)
        out[:, probe.classes_] = probe.predict_log_proba((z - mean) / scale)
        return out

    return logits


def score(
    task, info: dict, split: dict[str, np.ndarray], logits: np.ndarray, tokens: bool
) -> float:
    """The task's own dev metric of the probe's predictions."""
    from electra_tf.tasks.base import EvalContext
    from electra_tf.tasks.info import IGNORE

    if tokens:  # back into [examples, length, labels]; unlabelled pieces are not scored
        full = np.zeros((*split["label_ids"].shape, logits.shape[-1]), logits.dtype)
        full[split["label_ids"] != IGNORE] = logits
        logits = full
    ctx = EvalContext(info=info, data_dir="", split="dev", model_dir="")
    return task.score({"logits": logits}, {"label_ids": split["label_ids"]}, ctx)[
        info["main_metric"]
    ]


def probe_layer(x: dict, splits: dict, info: dict) -> dict:
    """One layer's probe: the L2 strength chosen on validation, scored on dev.

    x: that layer's features by split; splits: the parsed records by split.
    """
    from electra_tf.tasks import get_task
    from electra_tf.tasks.info import IGNORE

    task, tokens = get_task(info["kind"]), info["kind"] == "tagging"
    labels = splits["train"]["label_ids"]
    y = labels[labels != IGNORE] if tokens else labels
    fitted = {c: fit_probe(x["train"], y, c, len(info["labels"])) for c in INVERSE_L2}

    def scored(c: float, split: str) -> float:
        return score(task, info, splits[split], fitted[c](x[split]), tokens)

    validation = {c: scored(c, "validation") for c in INVERSE_L2}
    c = max(sorted(validation), key=validation.get)
    return {"c": c, "validation": validation[c], "dev": scored(c, "dev")}


def probe_start(work: str, study, data: dict, vocab_size: int, start: str) -> dict:
    """Every layer of one start on each probe task."""
    encoder = encoder_of(work, study, vocab_size, start)
    out = {}
    for name in (t for t in TASKS if t in dict(study.epochs)):
        data_dir = data["finetune"][name]
        info = learning.read_json(os.path.join(data_dir, "finetune_info.json"))
        tokens = info["kind"] == "tagging"
        splits = {s: read_split(data_dir, info, s) for s in ("train", "validation", "dev")}
        feats = {s: layer_features(encoder, split, tokens) for s, split in splits.items()}
        out[name] = [
            probe_layer({s: f[k] for s, f in feats.items()}, splits, info)
            for k in range(len(feats["train"]))
        ]
    return out


def markdown(out: dict) -> str:
    lines = []
    for name in (t for t in TASKS if t in next(iter(out["probes"].values()))):
        layers = len(next(iter(out["probes"].values()))[name])
        lines += [f"| {learning.TASK_TITLES[name]} | "
                  + " | ".join(f"layer {k}" for k in range(layers)) + " |",
                  "|---" * (layers + 1) + "|"]  # fmt: skip
        for start in sorted(out["probes"], key=learning.start_order):
            probes = out["probes"][start]
            cells = [f"{100 * layer['dev']:.1f}" for layer in probes[name]]
            lines.append(f"| {learning.start_label(start)} | " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines).rstrip()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work_dir", default=None, help="a learning study's --work_dir")
    parser.add_argument("--starts", default=None,
                        help="comma-separated starts (default: random and every kept tower)")  # fmt: skip
    parser.add_argument("--out", default=os.path.join(HERE, "results_layer_probe.json"))
    parser.add_argument("--render", action="store_true", help="only print the tables of --out")
    args = parser.parse_args()
    if args.render:
        print(markdown(learning.read_json(args.out)))
        return
    if not args.work_dir:
        parser.error("--work_dir is required (the learning study's)")
    from electra_tf.io_utils import atomic_write_json
    from electra_tf.vocab import Vocab

    work = os.path.abspath(args.work_dir)
    study = study_of(work)
    data = learning.read_json(os.path.join(work, "data.json"))
    vocab_size = Vocab.load(data["vocab"]).size
    starts = args.starts.split(",") if args.starts else kept_starts(work)
    for start in starts:
        kept = start.rpartition("-")[2].isdigit() and learning.tower_ready(work, start)
        if start != "random" and not kept:
            parser.error(f"--starts: {start!r} is not a tower kept in {work}/towers")
    probes = {}
    for start in starts:
        learning.log(f"probing every layer of {start}")
        probes[start] = probe_start(work, study, data, vocab_size, start)
    out = {
        "study": dataclasses.asdict(study),
        "machine": learning._machine(),
        "inverse_l2": list(INVERSE_L2),
        "probes": probes,
    }
    atomic_write_json(args.out, out)
    print(markdown(out))
    learning.log(f"wrote {args.out}")


if __name__ == "__main__":
    main()
