"""The convert command: flags -> an import into our tower format, or an
export of our towers to Hugging Face.

`python -m electra_tf.convert` runs `run_command` once its flags parsed.
"""

from __future__ import annotations

import os
import sys

from electra_tf import flags as electra_flags
from electra_tf.checkpoints import (
    find_towers,
    find_vocab,
    is_tower_dir,
    load_tower,
    save_tower,
    vocab_identity,
)
from electra_tf.convert import google, huggingface, keras_hub
from electra_tf.io_utils import atomic_write_bytes
from electra_tf.modeling import (
    ElectraBackbone,
    ElectraDiscriminator,
    ElectraGenerator,
    ElectraPretrainer,
)
from electra_tf.vocab import Vocab

FLAGS = electra_flags.FLAGS


def _towers_of(model) -> dict:
    if isinstance(model, ElectraPretrainer):
        return {"discriminator": model.discriminator, "generator": model.generator}
    if isinstance(model, ElectraDiscriminator):
        return {"discriminator": model}
    if isinstance(model, ElectraGenerator):
        return {"generator": model}
    if isinstance(model, ElectraBackbone):
        return {"encoder": model}
    raise TypeError(type(model).__name__)


def import_checkpoint(source: str) -> list[str]:
    """--from=google|hf|keras_hub: writes our towers under --output."""
    if source == "google":
        model = google.load(FLAGS.input, FLAGS.tower)
    elif source == "hf":
        model, _ = huggingface.load(FLAGS.input)
    else:
        model = keras_hub.load(FLAGS.input)
    vocab = _carry_vocab(FLAGS.input, FLAGS.output)
    written = []
    for name, tower in _towers_of(model).items():
        out = os.path.join(FLAGS.output, name)
        identity = (
            vocab_identity(vocab) if vocab and vocab.size == tower.config.vocab_size else None
        )
        save_tower(tower, tower.config, out, identity)
        print(f"{name}: loaded all {len(tower.weights)} variables -> {out}")
        written.append(out)
    return written


# Where a published checkpoint keeps its vocab, relative to its directory.
_VOCAB_FILES = ("vocab.txt", os.path.join("assets", "tokenizer", "vocabulary.txt"))


def _carry_vocab(source: str, output: str) -> Vocab | None:
    """Copies the checkpoint's vocab (Google and Hugging Face: vocab.txt; a
    keras-hub preset: assets/tokenizer/vocabulary.txt) to `output`/vocab.txt,
    where fine-tuning, export and fill-mask look for it; None if it has none."""
    directory = source if os.path.isdir(source) else os.path.dirname(source)
    for name in _VOCAB_FILES:
        path = os.path.join(directory, name)
        if os.path.exists(path):
            with open(path, "rb") as f:
                data = f.read()
            target = os.path.join(output, "vocab.txt")
            os.makedirs(output, exist_ok=True)
            atomic_write_bytes(target, data)
            print(f"vocab: {path} -> {target}")
            try:
                return Vocab.load(target)
            except ValueError as e:  # copied, but not a BERT vocab: no identity to record
                print(f"warning: {e}", file=sys.stderr)
                return None
    return None


def export_to_hf() -> list[str]:
    """--to=hf: writes the towers of --input as Hugging Face models."""
    if is_tower_dir(FLAGS.input) and FLAGS.tower == "both":
        raise ValueError(f"--input {FLAGS.input} is a single tower: say which with --tower")
    wanted = ("discriminator", "generator") if FLAGS.tower == "both" else (FLAGS.tower,)
    found = find_towers(FLAGS.input, wanted, itself=FLAGS.tower)
    if not found:
        raise ValueError(
            f"--input {FLAGS.input}: no discriminator/ or generator/ tower (model.weights.h5)"
        )
    written = []
    for name, directory in found.items():
        tower = load_tower(directory, name)
        out = os.path.join(FLAGS.output, name)
        arch = huggingface.save(tower, out)
        print(f"{name}: wrote {arch} -> {out}")
        written.append(out)
    return written


def export_to_keras_hub() -> list[str]:
    """--to=keras_hub: the discriminator's encoder (or an encoder tower) and a
    tokenizer as a keras-hub preset directory."""
    found = find_towers(FLAGS.input, ("discriminator", "encoder"), itself="discriminator")
    if not found:
        raise ValueError(f"--input {FLAGS.input}: no discriminator/ or encoder/ tower")
    tower, directory = next(iter(found.items()))
    try:
        model = load_tower(directory, tower)
    except ValueError:  # an encoder tower given as the directory itself
        model = load_tower(directory, "encoder")
    vocab = find_vocab(directory, FLAGS.vocab)
    report = keras_hub.save(model, FLAGS.output, vocab)
    print(
        f"{tower}: wrote a keras-hub preset (ElectraBackbone + ElectraTokenizer of {vocab}) -> "
        f"{FLAGS.output}; largest output difference to ours "
        f"{report['max_abs_difference']:.2e}"
        + (
            " (keras-hub's ELECTRA uses the tanh GELU, this model the exact one)"
            if model.config.hidden_act != "gelu_approximate"
            else ""
        )
    )
    return [FLAGS.output]


def run_command() -> list[str]:
    source = FLAGS["from"].value
    if bool(source) == bool(FLAGS.to):
        raise ValueError("pass exactly one of --from=google|hf|keras_hub or --to=hf|keras_hub")
    if source:
        return import_checkpoint(source)
    return export_to_keras_hub() if FLAGS.to == "keras_hub" else export_to_hf()
