"""The training loop: learning, exact resume, crash safety, NaN rollback and DDP on gloo."""
from __future__ import annotations

import json
import math
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from training import checkpoint as checkpoint_module
from training import trainer as trainer_module
from training.checkpoint import list_checkpoints, load_generator, load_state, step_of
from training.config import load_config
from training.trainer import Trainer, TrainingDiverged, train

ROOT = Path(__file__).resolve().parents[1]
KYARA = [sys.executable, "-m", "kyara"]


def metrics(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def test_twenty_steps_lower_the_discriminator_tag_loss(tiny_packed, tmp_path):
    cfg = load_config("tiny", ["lr=1e-3"])
    train(cfg, tiny_packed, tmp_path / "run", device="cpu", steps=20)
    tag = [m["d_tag_real"] for m in metrics(tmp_path / "run")]
    assert len(tag) == 20
    assert sum(tag[-5:]) / 5 < 0.8 * sum(tag[:5]) / 5
    assert (tmp_path / "run" / "samples" / "step_0000020.png").is_file()


def test_resume_repeats_an_uninterrupted_run_exactly(tiny_packed, tmp_path):
    cfg = load_config("tiny", ["ckpt_every=5", "keep_last=10"])
    train(cfg, tiny_packed, tmp_path / "straight", device="cpu", steps=10)
    train(cfg, tiny_packed, tmp_path / "split", device="cpu", steps=5)
    train(cfg, tiny_packed, tmp_path / "split", device="cpu", steps=10, resume=True)
    for name in ("G", "G_ema", "D"):
        a = load_file(str(tmp_path / "straight/checkpoints/step_0000010" / f"{name}.safetensors"))
        b = load_file(str(tmp_path / "split/checkpoints/step_0000010" / f"{name}.safetensors"))
        assert all(torch.equal(a[k], b[k]) for k in a), name
    assert [m["step"] for m in metrics(tmp_path / "split")] == list(range(1, 11))


def test_existing_run_needs_resume(tiny_packed, tmp_path):
    cfg = load_config("tiny")
    train(cfg, tiny_packed, tmp_path / "run", device="cpu", steps=10)
    with pytest.raises(FileExistsError, match="pass --resume"):
        Trainer(cfg, tiny_packed, tmp_path / "run", device="cpu")


def test_sigkill_mid_run_then_resume(tiny_packed, tmp_path):
    run = tmp_path / "run"
    cmd = [*KYARA, "train", "tiny", "--data", str(tiny_packed), "--run-dir", str(run), "--device", "cpu",
           "--set", "ckpt_every=3", "--set", "keep_last=3"]
    proc = subprocess.Popen([*cmd, "--steps", "100000"], cwd=ROOT, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.time() + 600
    while time.time() < deadline and len(list_checkpoints(run)) < 2:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done = list_checkpoints(run)
    assert len(done) >= 2, "the run made no checkpoints before it was killed"
    # Every folder with a checkpoint's name is complete: a half-written one may only sit under a .tmp name.
    assert sorted((run / "checkpoints").glob("step_*")) == done
    for ckpt in done:                       # every checkpoint on disk is whole and loads
        load_generator(ckpt)
        load_state(ckpt / "state.pt")
    last = step_of(done[-1])
    result = subprocess.run([*cmd, "--resume", "--steps", str(last + 3)], cwd=ROOT, capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert step_of(list_checkpoints(run)[-1]) == last + 3
    steps = [m["step"] for m in metrics(run)]
    assert steps == sorted(set(steps)) and steps[-1] == last + 3


def test_a_save_cut_short_leaves_no_checkpoint(tiny_packed, tmp_path, monkeypatch):
    """A crash half-way through writing step 10 leaves step 5 as the newest checkpoint, and resume works."""
    cfg = load_config("tiny", ["ckpt_every=5"])
    run = tmp_path / "run"
    train(cfg, tiny_packed, run, device="cpu", steps=5)

    def crash(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(checkpoint_module.torch, "save", crash)   # state.pt is written after the weights
    with pytest.raises(OSError, match="disk full"):
        train(cfg, tiny_packed, run, device="cpu", steps=10, resume=True)
    monkeypatch.undo()
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["step_0000005"]   # the half is gone
    train(cfg, tiny_packed, run, device="cpu", steps=10, resume=True)
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["step_0000005", "step_0000010"]


def test_nan_loss_stops_and_rolls_back(tiny_packed, tmp_path, monkeypatch):
    # Grids every 3 steps, logs every 5: the NaN of step 8 must stop the run before step 9's grid.
    cfg = load_config("tiny", ["ckpt_every=5", "log_every=5", "sample_every=3"])
    trainer = Trainer(cfg, tiny_packed, tmp_path / "run", device="cpu")
    real_adv_loss = trainer_module.adv_loss

    def poisoned(logits, real):
        loss = real_adv_loss(logits, real)
        return loss * float("nan") if trainer.step >= 7 else loss

    monkeypatch.setattr(trainer_module, "adv_loss", poisoned)
    with pytest.raises(TrainingDiverged, match=r"non-finite loss at step 8 .*rolled back to .*step_0000005"):
        trainer.fit(20)
    assert [step_of(p) for p in list_checkpoints(tmp_path / "run")] == [5]
    assert sorted(p.name for p in (tmp_path / "run/samples").iterdir()) == ["step_0000003.png", "step_0000006.png"]
    assert all(m["step"] <= 5 for m in metrics(tmp_path / "run"))
    saved = load_file(str(tmp_path / "run/checkpoints/step_0000005/G.safetensors"))
    assert all(torch.equal(saved[k], v) for k, v in trainer.G.state_dict().items())


@pytest.mark.skipif(not torch.distributed.is_available(), reason="torch built without distributed")
def test_two_process_gloo_ddp_keeps_ranks_identical(tiny_packed, tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
         str(ROOT / "tests" / "ddp_worker.py"), str(tiny_packed), str(tmp_path)],
        cwd=ROOT, capture_output=True, text=True, timeout=600, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert result.returncode == 0, result.stderr[-3000:]
    digests = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert digests[0]["step"] == digests[1]["step"] == 6
    assert digests[0]["weights"] == digests[1]["weights"]
    assert digests[0]["first_batch"] != digests[1]["first_batch"]     # each rank saw its own data
    assert digests[0]["weights"] != digests[0]["initial"]              # and they did learn


@pytest.mark.skipif(not torch.distributed.is_available(), reason="torch built without distributed")
def test_nan_on_one_rank_stops_every_rank(tiny_packed, tmp_path):
    """Both ranks stop at the same check with the same rollback: neither is left waiting for the other."""
    result = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
         str(ROOT / "tests" / "ddp_worker.py"), str(tiny_packed), str(tmp_path), "nan"],
        cwd=ROOT, capture_output=True, text=True, timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert result.returncode == 0, result.stderr[-3000:]
    for rank in (0, 1):
        ended = (tmp_path / f"rank{rank}.txt").read_text()
        assert re.match(r"non-finite loss at step 5 .*rolled back to .*step_0000003", ended), (rank, ended)


@pytest.mark.skipif(not torch.distributed.is_available(), reason="torch built without distributed")
def test_every_rank_pins_the_teacher_rank_0_found(tiny_packed, tmp_path):
    """A teacher run that saves a checkpoint between two ranks' looks must not give them different teachers."""
    train(load_config("tiny", ["ckpt_every=3"]), tiny_packed, tmp_path / "teacher", device="cpu", steps=6)
    newest = list_checkpoints(tmp_path / "teacher")[-1].resolve()
    result = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
         str(ROOT / "tests" / "ddp_worker.py"), str(tiny_packed), str(tmp_path), "teacher"],
        cwd=ROOT, capture_output=True, text=True, timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert result.returncode == 0, result.stderr[-3000:]
    assert [(tmp_path / f"rank{r}.txt").read_text() for r in (0, 1)] == [str(newest)] * 2


@pytest.mark.parametrize("model", [[], ["model.chroma_blur=true", "model.upsample=resize", "model.rgb_kernel=3"]],
                         ids=["paper", "main-line"])
def test_compiled_run_takes_steps(tiny_packed, tmp_path, model):
    """compile=true compiles G only: D's penalty needs a double backward, which compiled graphs lack. The
    main line's G too: its chroma blur's edge padding once failed the compiled backward on channels_last
    images (a stride check in replication_pad2d_backward), found by benchmarks/gpu_check.sh."""
    cfg = load_config("tiny", ["compile=true", "log_every=1", *model])
    train(cfg, tiny_packed, tmp_path / "run", device="cpu", steps=3)
    logged = metrics(tmp_path / "run")
    assert [m["step"] for m in logged] == [1, 2, 3]
    assert all(math.isfinite(m["loss_d"]) and math.isfinite(m["loss_g"]) for m in logged)
