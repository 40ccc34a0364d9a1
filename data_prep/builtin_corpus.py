r"""Extracts the built-in default corpus: English prose every Python carries.

    python -m data_prep.builtin_corpus --output=corpus.txt

The standard library's module, class and function docstrings plus the
`pydoc_data` help topics: several MB of real English, with no download, so
the demo runs on a fresh machine. One document per docstring / topic,
separated by blank lines. Deterministic for a given Python version.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import re
import sys
import sysconfig
import warnings

from absl import flags

from electra_tf import cli
from electra_tf.io_utils import atomic_write_text

FLAGS = flags.FLAGS

# Modules whose import has side effects (opens windows, prints, starts things).
_SKIP = re.compile(
    r"^(antigravity|this|idlelib|tkinter|turtle|turtledemo|test|lib2to3|ensurepip|"
    r"venv|__main__|pydoc_data|xxsubtype|_.*|.*\.__main__|distutils)(\.|$)"
)


def define_flags() -> None:
    flags.DEFINE_string("output", None, "Where to write the corpus (UTF-8 text).")


def _docstrings(module) -> list[str]:
    docs = []
    seen: set[int] = set()

    def add(obj) -> None:
        doc = inspect.getdoc(obj)
        if doc and id(doc) not in seen and len(doc.split()) >= 8:
            seen.add(id(doc))
            docs.append(doc)

    add(module)
    for name in sorted(vars(module)):
        obj = vars(module)[name]
        if getattr(obj, "__module__", None) != module.__name__:
            continue
        if inspect.isclass(obj):
            add(obj)
            for attr in sorted(vars(obj)):
                member = vars(obj)[attr]
                if inspect.isfunction(member) or inspect.ismethoddescriptor(member):
                    add(member)
        elif inspect.isfunction(obj) or inspect.isbuiltin(obj):
            add(obj)
    return docs


def collect() -> list[str]:
    """Returns the corpus as a list of documents."""
    from pydoc_data import topics

    documents = [topics.topics[name].strip() for name in sorted(topics.topics)]
    # Only the standard library (pkgutil.walk_packages would import site-packages).
    stdlib = sysconfig.get_paths()["stdlib"]
    queue = sorted(
        [(m.name, m.ispkg) for m in pkgutil.iter_modules([stdlib])]
        + [(n, False) for n in sys.builtin_module_names]
    )
    seen: set[str] = set()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        while queue:
            name, is_package = queue.pop(0)
            if name in seen or _SKIP.match(name):
                continue
            seen.add(name)
            try:
                module = importlib.import_module(name)
            except BaseException:  # noqa: BLE001 - any import failure just skips the module.
                continue
            documents.extend(_docstrings(module))
            if is_package and hasattr(module, "__path__"):
                subs = pkgutil.iter_modules(module.__path__, prefix=name + ".")
                queue.extend(sorted((m.name, m.ispkg) for m in subs))
    # Blank lines end documents in our input format; keep each docstring whole.
    return [re.sub(r"\n\s*\n", "\n", d) for d in documents]


def command() -> None:
    """The command line's job, on the parsed flags."""
    docs = collect()
    text = "\n\n".join(docs) + "\n"
    atomic_write_text(FLAGS.output, text)
    print(
        f"Wrote {len(docs):,} documents, {len(text.split()):,} words "
        f"({len(text.encode()) / 1e6:.1f} MB) to {FLAGS.output}"
    )


def run() -> None:
    cli.main(define_flags, command, required=("output",), output_files=("output",))


if __name__ == "__main__":
    run()
