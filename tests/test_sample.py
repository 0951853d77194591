"""`kyara sample`: a grid of faces from a checkpoint, and one-line errors for tags it cannot draw."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import make_tiny_packed
from kyara.cli import main
from training.config import load_config
from training.trainer import train


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("sample")
    train(load_config("tiny"), make_tiny_packed(tmp / "packed"), tmp / "run", device="cpu", steps=10)
    return tmp / "run"


def test_sample_writes_a_grid_that_follows_the_seed(run_dir: Path, tmp_path: Path) -> None:
    paths = [tmp_path / name for name in ("a.png", "b.png", "c.png")]
    for path, seed in zip(paths, (7, 7, 8)):
        assert main(["sample", str(run_dir), "--tags", "red hair", "-n", "6", "--seed", str(seed),
                     "-o", str(path)]) == 0
    a, b, c = (np.asarray(Image.open(p)) for p in paths)
    assert a.shape == (2 * 32, 3 * 32, 3)          # 6 faces of 32 px: 2 rows of 3
    assert np.array_equal(a, b) and not np.array_equal(a, c)


@pytest.mark.parametrize("tags, message", [
    ("rainbow hair", "unknown tag 'rainbow hair'; valid tags: blue hair, red hair, brown eyes, green eyes"),
    ("silver hair", "unknown tag 'silver hair'"),      # a paper tag this model was not trained on
    ("red hair, blue hair", "'red hair' and 'blue hair' are both in the exclusive group 'hair colour'"),
])
def test_sample_refuses_tags_in_one_line(run_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture,
                                         tags: str, message: str) -> None:
    assert main(["sample", str(run_dir), "--tags", tags, "-o", str(tmp_path / "x.png")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("kyara sample: ") and message in err and err.count("\n") == 1
    assert not (tmp_path / "x.png").exists()


def test_sample_into_a_folder_writes_one_png_a_face_and_leaves_other_files(run_dir: Path, tmp_path: Path,
                                                                          capsys: pytest.CaptureFixture) -> None:
    existing = tmp_path / "existing"
    existing.mkdir()
    (existing / "notes.txt").write_text("mine")
    for out in (tmp_path / "new", existing):
        assert main(["sample", str(run_dir), "-n", "4", "--seed", "3", "-o", str(out)]) == 0
        assert capsys.readouterr().out.strip() == f"{out}: 4 faces"
        assert sorted(p.name for p in out.glob("*.png")) == [f"seed3_{i:03d}.png" for i in range(4)]
        assert Image.open(out / "seed3_000.png").size == (32, 32)
    assert (existing / "notes.txt").read_text() == "mine"


def test_a_checkpoint_and_its_grid_agree_face_for_face(run_dir: Path, tmp_path: Path) -> None:
    """The grid is the folder's faces tiled: one seed asks for the same faces whatever is written."""
    assert main(["sample", str(run_dir), "-n", "4", "-o", str(tmp_path / "faces")]) == 0
    assert main(["sample", str(run_dir), "-n", "4", "-o", str(tmp_path / "grid.png")]) == 0
    grid = np.asarray(Image.open(tmp_path / "grid.png"))
    first = np.asarray(Image.open(tmp_path / "faces" / "seed0_000.png"))
    assert np.array_equal(grid[:32, :32], first)


def test_sample_refuses_an_output_it_cannot_write_before_sampling(run_dir: Path, tmp_path: Path,
                                                                  capsys: pytest.CaptureFixture) -> None:
    (tmp_path / "file").write_text("")
    with pytest.raises(SystemExit) as info:
        main(["sample", str(run_dir), "-o", str(tmp_path / "file" / "x.png")])
    err = capsys.readouterr().err
    assert info.value.code == 2 and err.count("\n") == 1
    assert err.startswith(f"kyara sample: argument -o/--out: {tmp_path / 'file'} is not a folder")
