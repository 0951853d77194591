"""The README's set-up commands (`./dev serve`, `./dev test`) and its benchmark commands, run for real."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
VENV_PYTHON = REPO / ".venv" / "bin" / "python"

in_dev_venv = pytest.mark.skipif(
    Path(sys.prefix).resolve() != (REPO / ".venv").resolve() or not (REPO / ".venv" / "bin" / "kyara").exists()
    or not Path("/usr/bin/chromium").exists(),
    reason="runs ./dev test, which would install what is missing: only inside the venv ./dev test made",
)


def link_or_copy(source: str, target: str) -> None:
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)


@in_dev_venv
def test_dev_test_lists_why_tests_skip(tmp_path):
    """Only CI passed -ra: `./dev test` showed "1 skipped" and hid the reason."""
    (tmp_path / "test_skips.py").write_text(
        "import pytest\n\n@pytest.mark.skip(reason='the reason a newcomer should see')\ndef test_x():\n    pass\n")
    done = subprocess.run([str(REPO / "dev"), "test", "-p", "no:cacheprovider", str(tmp_path / "test_skips.py")],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    assert re.search(r"SKIPPED \[1\] .*the reason a newcomer should see", done.stdout), done.stdout


def test_dev_serve_leaves_a_venv_that_pip_accepts(tmp_path):
    """`./dev serve` on a fresh checkout, then what a later `./dev test` relies on: installing into that
    venv must not print pip's "dependency resolver ... not installed" ERROR block. It did, because
    `./dev serve` installed kyara with --no-deps; `pip check` reports exactly those missing requirements.
    (Installs Flask from the package index into a new venv: about 20 s.)"""
    checkout = tmp_path / "checkout"
    checkout.mkdir()
    for name in ("dev", "pyproject.toml", "README.md", "package.json", "package-lock.json"):
        shutil.copy2(REPO / name, checkout / name)
    for package in ("common", "kyara", "tagger", "training", "export", "webapp"):
        shutil.copytree(REPO / package, checkout / package, ignore=shutil.ignore_patterns("__pycache__", "weights"))
    # npm ci is not what is tested here: the installed packages, as hard links where the file system allows
    # (never a symlink: npm ci empties the folder a node_modules link points to).
    shutil.copytree(REPO / "node_modules", checkout / "node_modules", symlinks=True, copy_function=link_or_copy)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VIRTUAL_ENV", "PYTHON"))}
    env["PATH"] = os.pathsep.join(p for p in env["PATH"].split(os.pathsep) if not p.startswith(str(REPO)))
    done = subprocess.run([str(checkout / "dev"), "serve", "--help"], cwd=checkout, env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    assert "usage: kyara serve" in done.stdout
    python = checkout / ".venv" / "bin" / "python"
    check = subprocess.run([str(python), "-m", "pip", "check"], env=env, capture_output=True, text=True, timeout=120)
    assert check.returncode == 0, check.stdout + check.stderr
    # What `./dev serve` installed is only what serving needs: no torch.
    probe = subprocess.run([str(python), "-c", "import flask, importlib.util as u; print(u.find_spec('torch'))"],
                           cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    assert probe.stdout.strip() == "None", probe.stderr


def test_documented_benchmark_commands_run_with_the_venv_python():
    """docs/benchmarks.md's commands need the project's venv (a system `python` lacks Flask, torch,
    onnxruntime): the page says so, and each script starts (--help) under .venv/bin/python."""
    section = (REPO / "docs" / "benchmarks.md").read_text()
    assert ".venv/bin/python" in section
    scripts = re.findall(r"^(?:\.venv/bin/)?python (benchmarks/\S+\.py)", section, re.MULTILINE)
    assert scripts and all((REPO / script).is_file() for script in scripts), scripts
    python = VENV_PYTHON if VENV_PYTHON.exists() else Path(sys.executable)
    for script in scripts:
        done = subprocess.run([str(python), script, "--help"], cwd=REPO, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0 and "usage:" in done.stdout, f"{script}: {done.stderr}"
