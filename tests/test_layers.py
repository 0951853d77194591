"""Imports run one way, read from the source (ast), so a new import that breaks the layering fails here.

Bottom to top: `common` (vocabulary, atomic files, the picture decoder, packed sets, crop-folder records,
option types) < `dataset` (crops, tag files, label files, packing) < `tagger` < `training` (the GAN) < `export`
(ONNX, the runtime, the generator adapters) < `judge` (what a person sees) < `metrics` < `kyara` (the command
line, which wires them together). `webapp` stands apart: it
imports none of them but `common.files` (atomic writes, standard library only), since `kyara serve` must
start with Flask alone. `benchmarks` sit on top of everything. Every import counts, also one inside a function.
"""
from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
RANK = {"common": 0, "dataset": 1, "tagger": 2, "training": 3, "export": 4, "judge": 5, "metrics": 6, "kyara": 7}
PACKAGES = (*RANK, "webapp", "benchmarks")
# Writes under a temporary name then os.replace: only in the one helper.
RENAME_ALLOWED = {"common/files.py"}
# What webapp may import of the others: modules of the standard library alone (checked below).
WEBAPP_ALLOWED = {"common.files"}
HEAVY = {"torch", "timm", "cv2", "onnx", "onnxruntime", "safetensors", "flask"}


def modules() -> dict[str, Path]:
    """Dotted module name -> file, for every module of the project's packages."""
    found = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def imported(path: Path) -> set[str]:
    """Every module name an import statement in `path` names (`from a.b import c` names a.b and a.b.c)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


MODULES = modules()
EDGES = {name: {m for m in imported(path) if m in MODULES and m != name} for name, path in MODULES.items()}


def test_packages_import_only_downwards():
    wrong = []
    for name, path in MODULES.items():
        package = name.split(".")[0]
        for target in EDGES[name]:
            other = target.split(".")[0]
            if other == package or package == "benchmarks":
                continue
            if package == "webapp" and target in WEBAPP_ALLOWED:
                continue
            if package == "webapp" or other in ("webapp", "benchmarks") or RANK[other] > RANK[package]:
                wrong.append(f"{path.relative_to(ROOT)} imports {target}")
    assert not wrong, "imports against the layering:\n" + "\n".join(sorted(wrong))


def test_what_webapp_imports_needs_only_the_standard_library():
    """`kyara serve` starts on a machine with Flask alone (`./dev serve`)."""
    for name in WEBAPP_ALLOWED:
        outside = {m for m in imported(MODULES[name]) if m.split(".")[0] not in sys.stdlib_module_names
                   and m != "__future__"}
        assert not outside, f"{name} imports {outside}"


def test_tagger_imports_nothing_of_training():
    assert not [n for n in MODULES if n.split(".")[0] == "tagger" and any(
        t.split(".")[0] == "training" for t in EDGES[n])]


def test_evaluate_does_not_import_the_trainer():
    assert "training.trainer" not in EDGES["metrics.evaluate"]


def test_bottom_is_light():
    """The vocabulary and file helpers are read by the torch-free runtime: nothing heavy below the tagger."""
    heavy = {f"{n} imports {m}" for n, p in MODULES.items() if n.split(".")[0] == "common"
             for m in imported(p) if m.split(".")[0] in HEAVY}
    assert not heavy


def test_no_import_cycles():
    """Between modules, counting imports inside functions too: a cycle means two modules share a home."""
    state: dict[str, int] = {}      # 1 on the current path, 2 finished

    def visit(name: str, path: list[str]) -> None:
        state[name] = 1
        for target in sorted(EDGES[name]):
            if state.get(target) == 1:
                pytest.fail("import cycle: " + " -> ".join([*path[path.index(target):], target]))
            if target not in state:
                visit(target, [*path, target])
        state[name] = 2

    for name in sorted(MODULES):
        if name not in state:
            visit(name, [name])


def test_atomic_renames_have_one_home():
    """A temporary name renamed into place is written out once, in `common.files`."""
    found = []
    for name, path in MODULES.items():
        rel = path.relative_to(ROOT).as_posix()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            call = isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and (
                node.value.id, node.attr) in {("os", "replace"), ("os", "rename"), ("shutil", "move")}
            from_os = isinstance(node, ast.ImportFrom) and node.module in ("os", "shutil") and any(
                a.name in ("replace", "rename", "move") for a in node.names)
            if (call or from_os) and rel not in RENAME_ALLOWED:
                found.append(f"{rel}:{node.lineno}")
    assert not found, "rename into place outside common/files.py: " + ", ".join(found)


def test_long_modules_say_why_they_are_long():
    """A module over 400 lines is usually two modules; one that is not says why ("because") in its first lines."""
    paths = [*MODULES.values(), *sorted((ROOT / "tests").glob("*.py"))]
    long = [p.relative_to(ROOT).as_posix() for p in paths
            if len(lines := p.read_text(encoding="utf-8").splitlines()) > 400
            and "because" not in " ".join(lines[:12]).lower()]
    assert not long, "over 400 lines with no reason given: " + ", ".join(long)
