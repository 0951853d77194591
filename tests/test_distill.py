"""`kyara upscaler distill` and `kyara upscaler student`: a short run writes a checkpoint and goes on from it,
the exported folder computes what the PyTorch student computes, and bad inputs are refused in one line.

Tiny fixtures: two tars in the MLDS layout of ../shared/data (the tag CSV first) holding drawn faces
(tests/faces.py, recoloured; two of them mirror twins), a few of the bundled generator's faces, and the shipped
waifu2x upscaler (models/upscaler-waifu2x, formerly models/upscaler) as the teacher. The student is narrow
(3-8-16-8) to keep the run short.
"""
from __future__ import annotations

import io
import json
import shutil
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from faces import draw_face

REPO = Path(__file__).resolve().parents[1]
# waifu2x's converted UpConv7, where the repository keeps it (any upscaler folder would do as a teacher here)
TEACHER = next((p for p in (REPO / "models" / "upscaler-waifu2x", REPO / "models" / "upscaler")
                if (p / "manifest.json").is_file()), REPO / "models" / "upscaler")
MODEL_DIR = REPO / "models" / "default"
CHANNELS = "3,8,16,8"

pytestmark = pytest.mark.skipif(not (TEACHER / "manifest.json").is_file(), reason=f"no upscaler at {TEACHER}")


def face_tar(path: Path, size: int, n: int, seed: int, top: str) -> Path:
    """n drawn faces of `size` px with random hair and background colours; faces 0 and 1 are mirror twins."""
    rng = np.random.default_rng(seed)
    base = draw_face(size)
    hair = np.all(base == (90, 60, 40), axis=2)
    white = np.all(base == 255, axis=2)
    rows, jpegs, faces = {}, {}, []
    for i in range(n):
        face = base.copy()
        face[hair] = rng.integers(0, 256, 3)
        face[white] = rng.integers(150, 256, 3)
        faces.append(faces[0][:, ::-1] if i == 1 else face)
        buf = io.BytesIO()
        Image.fromarray(np.ascontiguousarray(faces[i])).save(buf, format="JPEG", quality=90)
        jpegs[str(i)] = buf.getvalue()
        rows[str(i)] = "blue hair red eyes" if i < 2 else f"{['pink', 'green', 'black'][i % 3]} hair blue eyes"
    with tarfile.open(path, "w") as tar:
        members = {f"{top}/tags.csv": "".join(f"{k},{v}\n" for k, v in rows.items()).encode()}
        members.update({f"{top}/images/{k}.jpg": data for k, data in jpegs.items()})
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


@pytest.fixture(scope="module")
def sources(tmp_path_factory) -> list[str]:
    folder = tmp_path_factory.mktemp("tars")
    args = ["--getchu", str(face_tar(folder / "getchu.tar", 64, 6, 0, "extra_data")), "--getchu-faces", "6",
            "--konachan", str(face_tar(folder / "konachan.tar", 96, 3, 1, "faces")), "--konachan-faces", "3"]
    if (MODEL_DIR / "manifest.json").is_file():
        return args + ["--generator", str(MODEL_DIR), "--generated-faces", "2"]
    return args + ["--generated-faces", "0"]


def distill_args(run_dir: Path, sources: list[str], *extra: str) -> list[str]:
    return ["upscaler", "distill", "--teacher", str(TEACHER), "--run-dir", str(run_dir), *sources,
            "--val-faces", "2", "--x4-faces", "2", "--channels", CHANNELS, "--batch", "4", "--patch", "8",
            "--log-every", "1", "--val-every", "0", "--save-every", "2", *extra]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory, sources) -> Path:
    from kyara.cli import main
    run = tmp_path_factory.mktemp("distill") / "run"
    assert main(distill_args(run, sources, "--steps", "3")) == 0
    return run


def checkpoint(run: Path) -> dict:
    return torch.load(run / "checkpoint.pt", map_location="cpu", weights_only=True)


def test_a_short_run_writes_a_checkpoint_and_resumes(run_dir, sources, tmp_path, capsys):
    """3 steps: the checkpoint, the cached data (the teacher's 128 px of every face, its 256 px of the
    validation faces and of --x4-faces more), a validation line; the mirror twins on one side of the split.
    --resume --steps 5 goes on from step 3 with the same data; without --resume the run folder is refused."""
    from kyara.cli import main

    state = checkpoint(run_dir)
    assert state["step"] == 3 and tuple(state["channels"]) == (3, 8, 16, 8)
    info = json.loads((run_dir / "data" / "data.json").read_text())
    faces = np.load(run_dir / "data" / "faces.npy")
    n = len(faces)
    assert faces.shape == (n, 64, 64, 3) and n == 9 + 2 * ("--generator" in sources)
    assert np.load(run_dir / "data" / "x2.npy").shape == (n, 128, 128, 3)
    assert np.load(run_dir / "data" / "x4.npy").shape == (len(info["val"]) + 2, 256, 256, 3)
    assert len(info["val"]) >= 2 and info["x4_rows"][:len(info["val"])] == info["val"]
    assert (0 in info["val"]) == (1 in info["val"])           # the twins (getchu rows 0 and 1) stay together
    val = [json.loads(line) for line in (run_dir / "val.jsonl").read_text().splitlines()]
    assert [v["step"] for v in val] == [3] and val[0]["x2"] > 10 and val[0]["x4"] > 10

    resumed = tmp_path / "run"
    shutil.copytree(run_dir, resumed)
    data_time = (resumed / "data" / "x2.npy").stat().st_mtime_ns
    capsys.readouterr()
    assert main(distill_args(resumed, sources, "--steps", "5", "--resume")) == 0
    out = capsys.readouterr().out
    assert "resumed from step 3" in out and "step 4:" in out and "step 3:" not in out and "teacher 64" not in out
    after = checkpoint(resumed)
    assert after["step"] == 5 and (resumed / "data" / "x2.npy").stat().st_mtime_ns == data_time
    assert not torch.equal(after["student"]["convs.0.weight"], state["student"]["convs.0.weight"])

    assert main(distill_args(resumed, sources, "--steps", "7")) == 2
    assert "pass --resume" in capsys.readouterr().err
    assert main(distill_args(resumed, sources, "--steps", "7", "--resume", "--batch", "8")) == 2
    assert "batch 4 not 8" in capsys.readouterr().err


def test_student_folder_computes_what_the_torch_student_computes(run_dir, tmp_path, capsys):
    """`kyara upscaler student`: an upscaler folder (fp32 and compact ONNX, manifest, the teacher's licence)
    whose default (fp32) `image` is the PyTorch student's edge-padded forward, clipped, within 1e-4; 64 px in,
    128 px out."""
    from export.distill import Student
    from export.runtime import Upscaler
    from kyara.cli import main

    out = tmp_path / "student"
    assert main(["upscaler", "student", str(run_dir), "-o", str(out)]) == 0
    assert "UpConv4 student (3-8-16-8)" in capsys.readouterr().out
    manifest = json.loads((out / "manifest.json").read_text())
    teacher = json.loads((TEACHER / "manifest.json").read_text())
    assert manifest["architecture"] == "UpConv4 student (3-8-16-8)" and manifest["version"] == "step3"
    assert manifest["input_padding"]["pixels"] == 4 and manifest["file"] == "upscaler.onnx"
    source = manifest["source"]
    assert source["steps"] == 3 and source["distilled_from"]["sha256"] == teacher["sha256"]
    assert source["distilled_from"]["name"] == teacher["name"] and "psnr_db_vs_teacher" in source
    notice = (out / manifest["license"]["file"]).read_text()
    assert "distilled" in notice and "Permission is hereby granted" in notice

    student = Student((3, 8, 16, 8))
    student.load_state_dict(checkpoint(run_dir)["student"])
    rgba = np.random.default_rng(0).integers(0, 256, (2, 64, 64, 4), dtype=np.uint8)
    default = Upscaler(out)
    got, image = default.session.run(["rgba", "image"], {"rgba_in": rgba})
    with torch.no_grad():
        expected = student(torch.from_numpy(rgba[..., :3].transpose(0, 3, 1, 2).astype(np.float32) / 255)).clamp(0, 1)
    assert got.shape == (2, 128, 128, 4) and (got[..., 3] == 255).all()
    assert np.abs(image - expected.numpy()).max() < 1e-4
    assert default.path.name == "upscaler.onnx" and default.upscale(rgba, 4).shape == (2, 256, 256, 4)
    compact = Upscaler(out / "upscaler.compact.onnx")
    assert compact.upscale(rgba, 2).shape == (2, 128, 128, 4)


@pytest.mark.parametrize("case, message", [
    ("missing teacher", "not an upscaler folder"),
    ("missing tar", "no such tar"),
    ("not a tar", "not a tar file"),
    ("no length", "give --steps or --minutes"),
    ("nothing to resume", "no checkpoint.pt"),
    ("student of nothing", "no such run folder"),
    ("student of an empty folder", "no checkpoint.pt"),
    ("student of a broken checkpoint", "not a readable checkpoint"),
])
def test_bad_inputs_are_refused_in_one_line(tmp_path, sources, capsys, case, message):
    from kyara.cli import main

    run, out = tmp_path / "run", tmp_path / "out"
    text = tmp_path / "faces.tar"
    text.write_text("hello")
    argv = {
        "missing teacher": distill_args(run, sources, "--steps", "1", "--teacher", str(tmp_path / "none")),
        "missing tar": distill_args(run, sources, "--steps", "1", "--getchu", str(tmp_path / "none.tar")),
        "not a tar": distill_args(run, sources, "--steps", "1", "--konachan", str(text)),
        "no length": distill_args(run, sources),
        "nothing to resume": distill_args(run, sources, "--steps", "1", "--resume"),
        "student of nothing": ["upscaler", "student", str(run), "-o", str(out)],
        "student of an empty folder": ["upscaler", "student", str(tmp_path), "-o", str(out)],
        "student of a broken checkpoint": ["upscaler", "student", str(tmp_path), "-o", str(out)],
    }[case]
    if case == "student of a broken checkpoint":
        (tmp_path / "checkpoint.pt").write_bytes(b"not a checkpoint")
    if case == "nothing to resume":
        run.mkdir()
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("kyara upscaler ") and message in err and "\n" not in err and "Traceback" not in err
    assert not out.exists() and not (run / "checkpoint.pt").exists()
