"""`kyara data review`: numbered contact sheets in the right order, and a correction round-tripped into the labels."""
from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from common.packed import write_packed
from common.vocab import Vocabulary
from kyara.cli import main
from tagger.review import CAPTION, CELL, COLUMNS, review_sheets
from tagger.data import LabelledSet, load_training_data
from dataset.tagfile import read_tag_file, write_tag_file

SMILE = [0.2, 0.9, 0.6, 0.05, 0.7, 0.4, 0.3, 0.8]


def crop_folder(folder: Path) -> tuple[Path, list[np.ndarray]]:
    """Eight flat-coloured 64 px crops; tags.csv says smile where p:smile >= 0.5."""
    folder.mkdir()
    faces = [np.full((64, 64, 3), (30 * i, 255 - 30 * i, 100), np.uint8) for i in range(len(SMILE))]
    names = [f"face{i}.png" for i in range(len(SMILE))]
    for name, face in zip(names, faces):
        Image.fromarray(face).save(folder / name)
    rows = [(n, ["blue hair", *(["smile"] if p >= 0.5 else [])]) for n, p in zip(names, SMILE)]
    write_tag_file(folder / "tags.csv", rows, [[1.0, p] for p in SMILE], ["blue hair", "smile"])
    return folder, faces


def twin_packed(path: Path, names: list[str]) -> Path:
    """Six blank blue-haired images of three faces, each with its mirror twin (face groups 0 0 1 1 2 2)."""
    labels = np.zeros((6, 2), np.int8)
    labels[:, 0] = 1
    return write_packed(path, np.zeros((6, 32, 32, 3), np.uint8), labels, Vocabulary(["blue hair", "red hair"]),
                        np.array([0, 0, 1, 1, 2, 2]), np.zeros(6, bool), source="test", names=names)


def cell(sheet: Image.Image, k: int) -> np.ndarray:
    x, y = (k % COLUMNS) * CELL, 20 + (k // COLUMNS) * (CELL + CAPTION)
    return np.asarray(sheet.crop((x, y, x + CELL, y + CELL)))


def test_ranked_sheets_and_a_correction_round_trip(tmp_path):
    folder, faces = crop_folder(tmp_path / "crops")
    written = review_sheets(folder, "smile", tmp_path / "review", ranked=True)
    assert [p.name for p in written] == ["sheet_001.png", "corrections.csv"]
    order = list(np.argsort(-np.array(SMILE), kind="stable"))
    sheet = Image.open(written[0])
    assert sheet.width == COLUMNS * CELL
    for k, i in enumerate(order):                # face k of the sheet is the k-th most likely, shown at 168 px
        big = np.asarray(Image.fromarray(faces[i]).resize((CELL, CELL), Image.Resampling.LANCZOS))
        np.testing.assert_array_equal(cell(sheet, k), big)
    table = list(csv.reader(written[1].open()))
    assert table[0] == ["id", "smile"]
    assert table[1:] == [[f"face{i}.png", str(int(SMILE[i] >= 0.5))] for i in order]

    # The reviewer sees that face 3 of the sheet (face4, p=0.7) does not smile and face 5 (face5, 0.4) does.
    table[3][1], table[5][1] = "0", "1"
    with open(written[1], "w", newline="") as f:
        csv.writer(f).writerows(table)
    assert main(["data", "review", "apply", str(written[1]), str(folder / "tags.csv")]) == 0
    tags = read_tag_file(folder / "tags.csv")
    assert "smile" not in tags["face4.png"] and "smile" in tags["face5.png"] and "blue hair" in tags["face5.png"]
    assert [n for n, t in tags.items() if "smile" in t] == ["face1.png", "face2.png", "face5.png", "face7.png"]
    row = next(r for r in csv.DictReader((folder / "tags.csv").open()) if r["path"] == "face4.png")
    assert float(row["p:smile"]) == pytest.approx(0.7)                           # probabilities kept

    only = review_sheets(folder, "smile", tmp_path / "tagged")                   # faces with the tag
    assert [r[0] for r in csv.reader(only[-1].open())][1:] == ["face1.png", "face2.png", "face5.png", "face7.png"]


def test_corrections_train_the_tagger_and_bad_ids_are_refused(tmp_path, capsys):
    """On a packed set the corrections file is a --labels file: a twin takes its face's correction."""
    data = twin_packed(tmp_path / "packed", [f"{i}" for i in range(6)])
    written = review_sheets(data, "blue hair", tmp_path / "review")
    table = list(csv.reader(written[-1].open()))
    assert table == [["id", "blue hair"], ["0", "1"], ["2", "1"], ["4", "1"]]       # one image per face
    (tmp_path / "glasses.csv").write_text("id,glasses\n2,1\n")
    loaded = load_training_data([LabelledSet(data, [tmp_path / "glasses.csv"])])
    assert list(loaded.labels[:, loaded.vocab.index("glasses")]) == [-1, -1, 1, 1, -1, -1]

    folder, _ = crop_folder(tmp_path / "crops")
    (tmp_path / "wrong.csv").write_text("id,smile\nnobody.png,1\n")
    before = (folder / "tags.csv").read_text()
    assert main(["data", "review", "apply", str(tmp_path / "wrong.csv"), str(folder / "tags.csv")]) == 2
    assert "wrong.csv: 1 ids are not in" in capsys.readouterr().err
    assert (folder / "tags.csv").read_text() == before


def test_a_search_goes_on_past_the_faces_already_reviewed(tmp_path):
    """--skip: the faces a label file names, and their twins, are left off; the rest keep their ranked order."""
    data = twin_packed(tmp_path / "packed", [f"faces/{i}.png" for i in range(6)])
    (tmp_path / "done.csv").write_text("id,blue hair\n3,1\n")                 # the twin of face 2, by its stem
    assert main(["data", "review", "sheets", str(data), "--tag", "blue hair", "--skip", str(tmp_path / "done.csv"),
                 "-o", str(tmp_path / "review")]) == 0
    assert [r[0] for r in csv.reader((tmp_path / "review" / "corrections.csv").open())][1:] == \
        ["faces/0.png", "faces/4.png"]
    folder, _ = crop_folder(tmp_path / "crops")
    (tmp_path / "seen.csv").write_text("id,smile\nface1.png,1\nface7,0\n")
    written = review_sheets(folder, "smile", tmp_path / "ranked", ranked=True, skip=[tmp_path / "seen.csv"])
    assert [r[0] for r in csv.reader(written[-1].open())][1:] == [
        f"face{i}.png" for i in np.argsort(-np.array(SMILE), kind="stable") if i not in (1, 7)]


def test_a_tag_file_naming_an_image_twice_is_refused_not_misaligned(tmp_path):
    """Probabilities come one per CSV row and tags one per image: a repeated image would shift every later
    face onto the row before's probability, so it is refused; blank lines are skipped by both."""
    folder, _ = crop_folder(tmp_path / "crops")
    lines = (folder / "tags.csv").read_text().splitlines()
    (folder / "tags.csv").write_text("\n".join([lines[0], lines[1], "", *lines[2:]]) + "\n")
    written = review_sheets(folder, "smile", tmp_path / "blank", ranked=True)
    order = [r[0] for r in csv.reader(written[-1].open())][1:]
    assert order == [f"face{i}.png" for i in np.argsort(-np.array(SMILE), kind="stable")]
    (folder / "tags.csv").write_text("\n".join([lines[0], lines[1], lines[1], *lines[2:]]) + "\n")
    with pytest.raises(ValueError, match="tags.csv: 1 images appear in more than one row"):
        review_sheets(folder, "smile", tmp_path / "twice", ranked=True)


def test_an_empty_or_mistyped_probability_cell_is_named(tmp_path):
    """A hand-edited tag file may hold an empty or mistyped `p:` cell: the error names the file, line and tag
    (line 4 below: the header, face0, a blank line, then face1)."""
    folder, _ = crop_folder(tmp_path / "crops")
    lines = (folder / "tags.csv").read_text().splitlines()
    for cell_text, expected in (("", "expected a probability, got ''"), ("O.9", "expected a probability, got 'O.9'"),
                                ("1.5", "expected a probability between 0 and 1, got '1.5'")):
        edited = lines[2].rsplit(",", 1)[0] + "," + cell_text
        (folder / "tags.csv").write_text("\n".join([lines[0], lines[1], "", edited, *lines[3:]]) + "\n")
        with pytest.raises(ValueError, match=rf"tags.csv:4: p:smile: {expected}"):
            review_sheets(folder, "smile", tmp_path / "sheets", ranked=True)
