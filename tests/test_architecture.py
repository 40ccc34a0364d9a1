"""The layer order of docs/design.md, checked on the source.

Each module of `electra_tf` and `data_prep` belongs to one layer; a module
imports only from layers below its own, or from its own package within its
layer. Imports are read from the source (nothing is executed), so a
violation fails here before it can hide behind a lazy import:

    core -> kernels -> modeling -> tasks -> storage (checkpoints, data_prep)
         -> services (engine, serving, convert) -> jobs -> entry points

For example, adding `from electra_tf.finetuning.job import FinetuneOptions`
to `electra_tf/checkpoints.py` makes `test_imports_point_down` fail with
"electra_tf.checkpoints (storage) imports electra_tf.finetuning.job (jobs)";
`test_the_check_catches_an_upward_import` shows it on a synthetic module.

Function-level imports are for optional or heavy third-party packages only
(`DEFERRED`): a first-party import inside a function would hide a cycle or an
upward import, and a deferred import of a package the module already
imports at the top has no reason.
"""

from __future__ import annotations

import ast
import pathlib
import subprocess

import pytest
from helpers import REPO, run_python

PACKAGES = ("electra_tf", "data_prep")

# Layers, bottom first. A module is in the first layer one of whose prefixes
# it matches (longest prefix wins).
LAYERS: dict[str, tuple[str, ...]] = {
    "core": (
        "electra_tf",
        "electra_tf.cli",
        "electra_tf.compat",
        "electra_tf.config",
        "electra_tf.console",
        "electra_tf.distribute",
        "electra_tf.errors",
        "electra_tf.flags",
        "electra_tf.io_utils",
        "electra_tf.masking",
        "electra_tf.metrics",
        "electra_tf.optimization",
        "electra_tf.records",
        "electra_tf.shard_scan",
        "electra_tf.tokenizer",
        "electra_tf.vocab",
    ),
    "kernels": ("electra_tf.kernels",),
    "modeling": ("electra_tf.modeling",),
    "tasks": ("electra_tf.tasks",),
    "storage": ("electra_tf.checkpoints", "data_prep"),
    "services": ("electra_tf.engine", "electra_tf.serving", "electra_tf.convert"),
    "jobs": ("electra_tf.pretraining", "electra_tf.finetuning"),
    "entry points": (
        "electra_tf.convert.__main__",
        "electra_tf.export",
        "electra_tf.fill_mask",
        "electra_tf.finetune",
        "electra_tf.glue",
        "electra_tf.pretrain",
        "electra_tf.tflite",
    ),
}
RANK = {name: i for i, name in enumerate(LAYERS)}

# Third-party packages a function may import: optional extras (Beam,
# MediaPipe, PyTorch, transformers) and heavy ones that a command needs on
# one path only (Model Garden's SQuAD code, keras-hub, TensorFlow in the data
# prep workers, which write TFRecords without it).
DEFERRED = {
    "ai_edge_litert",
    "apache_beam",
    "keras_hub",
    "mediapipe",
    "numpy",
    "official",
    "pydoc_data",
    "safetensors",
    "tensorflow",
    "tensorflow_text",
    "torch",
    "transformers",
}


def _module_name(path: pathlib.Path, root: pathlib.Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def layer_of(module: str) -> str:
    best, best_len = None, -1
    for layer, prefixes in LAYERS.items():
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and len(prefix) > best_len:
                best, best_len = layer, len(prefix)
    if best is None:
        raise AssertionError(f"{module} is in no layer: add it to LAYERS (and docs/design.md)")
    return best


def package_of(module: str) -> str:
    """The package a module is part of for the same-layer rule: its longest
    LAYERS prefix (a core module is its own package)."""
    prefixes = [p for ps in LAYERS.values() for p in ps]
    return max((p for p in prefixes if module == p or module.startswith(p + ".")), key=len)


def _resolve(node: ast.ImportFrom, module: str, is_package: bool) -> str:
    if not node.level:
        return node.module or ""
    base = module.split(".") if is_package else module.split(".")[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def imports_of(source: str, module: str, is_package: bool):
    """(line, imported module, at top level?) for every import in `source`.

    `from pkg import name` counts as importing `pkg.name` when that is a
    module of ours, else `pkg`.
    """
    tree = ast.parse(source)
    found = []

    def visit(node, top):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and getattr(child.test, "id", "") == "TYPE_CHECKING":
                continue  # annotations only
            if isinstance(child, ast.Import):
                found.extend((child.lineno, a.name, top) for a in child.names)
            elif isinstance(child, ast.ImportFrom):
                base = _resolve(child, module, is_package)
                for a in child.names:
                    found.append((child.lineno, f"{base}.{a.name}", top, base))
            inner = isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
            visit(child, top and not inner)

    visit(tree, True)
    return found


def scan(root: pathlib.Path = REPO):
    """{module: [(line, target module, top level?)]} of first-party and
    deferred third-party imports, targets resolved to known modules."""
    files = {}
    for package in PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            files[_module_name(path, root)] = path
    graph = {}
    for module, path in files.items():
        edges = []
        for entry in imports_of(path.read_text(), module, path.name == "__init__.py"):
            line, target, top = entry[:3]
            if len(entry) == 4 and target not in files:
                target = entry[3]  # `from pkg import name`: name is not a module
            edges.append((line, target, top))
        graph[module] = edges
    return graph, files


def first_party(target: str) -> bool:
    return target.split(".")[0] in PACKAGES


def violations(graph) -> list[str]:
    problems = []
    graph = {m: sorted(set(es)) for m, es in graph.items()}
    for module, edges in graph.items():
        layer = layer_of(module)
        top_level_roots = {t.split(".")[0] for _, t, top in edges if top}
        for line, target, top in edges:
            where = f"{module}:{line}"
            if first_party(target):
                if target == module:
                    continue
                if not top:
                    problems.append(f"{where}: function-level import of {target}")
                other = layer_of(target)
                if RANK[other] > RANK[layer]:
                    problems.append(f"{where}: {module} ({layer}) imports {target} ({other})")
                elif (
                    RANK[other] == RANK[layer]
                    and package_of(module) != package_of(target)
                    and layer not in ("core", "entry points")
                ):
                    problems.append(f"{where}: {module} imports {target} sideways ({layer})")
            elif not top:
                root = target.split(".")[0]
                if root not in DEFERRED:
                    problems.append(f"{where}: function-level import of {target} (not DEFERRED)")
                elif root in top_level_roots:
                    problems.append(f"{where}: {root} is imported at the top already")
    return problems


def cycles(graph) -> list[list[str]]:
    """Import cycles among first-party modules (top-level imports; a
    package's __init__ importing its own submodules is not a cycle edge back)."""
    edges = {
        m: sorted({t for _, t, top in es if top and first_party(t) and t in graph and t != m})
        for m, es in graph.items()
    }
    found, state, stack = [], {}, []

    def dfs(node):
        state[node] = 1
        stack.append(node)
        for nxt in edges[node]:
            if state.get(nxt) == 1:
                found.append(stack[stack.index(nxt) :] + [nxt])
            elif nxt not in state:
                dfs(nxt)
        stack.pop()
        state[node] = 2

    for node in sorted(edges):
        if node not in state:
            dfs(node)
    return found


def test_every_module_has_a_layer():
    graph, _ = scan()
    for module in graph:
        layer_of(module)


def test_imports_point_down():
    graph, _ = scan()
    assert violations(graph) == []


def test_no_import_cycles():
    graph, _ = scan()
    assert cycles(graph) == []


def test_the_check_catches_an_upward_import(tmp_path):
    for package in PACKAGES:
        src = REPO / package
        subprocess.run(["cp", "-r", str(src), str(tmp_path / package)], check=True)
    target = tmp_path / "electra_tf" / "checkpoints.py"
    target.write_text(
        target.read_text() + "\nfrom electra_tf.finetuning.job import FinetuneOptions\n"
    )
    graph, _ = scan(tmp_path)
    assert any(
        "electra_tf.checkpoints (storage) imports electra_tf.finetuning.job (jobs)" in v
        for v in violations(graph)
    )
    # ... and a cycle, a first-party import inside a function, and one sideways.
    (tmp_path / "electra_tf" / "kernels" / "switch.py").write_text(
        "import electra_tf.kernels.dropout\n"
    )
    (tmp_path / "electra_tf" / "serving" / "extra.py").write_text(
        "def f():\n    from electra_tf import vocab\n\nfrom electra_tf.convert import google\n"
    )
    graph, _ = scan(tmp_path)
    assert any("electra_tf.kernels.switch" in c for c in cycles(graph))
    problems = violations(graph)
    assert "electra_tf.serving.extra:2: function-level import of electra_tf.vocab" in problems
    assert any("electra_tf.serving.extra" in p and "sideways" in p for p in problems)


def test_job_packages_are_imported_only_by_jobs_and_entry_points():
    """The issue's grep, as a test: only the job packages themselves and the
    entry points import `electra_tf.pretraining` or `electra_tf.finetuning`."""
    graph, _ = scan()
    jobs = ("electra_tf.pretraining", "electra_tf.finetuning")
    offenders = {
        module
        for module, edges in graph.items()
        for _, target, _ in edges
        if target.startswith(jobs) and layer_of(module) not in ("jobs", "entry points")
    }
    assert offenders == set()


@pytest.mark.parametrize("command", ["electra_tf.pretrain", "data_prep.build_vocab"])
def test_an_entry_point_imports_cleanly(command):
    """The graph is acyclic at run time too: a fresh interpreter imports the
    entry point and the whole model library without an ImportError."""
    code = f"import {command}, electra_tf.modeling, electra_tf.tasks, electra_tf.checkpoints"
    r = run_python("-c", code)
    assert r.returncode == 0, r.stderr[-2000:]
