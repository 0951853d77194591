"""`kyara data crop`: detection on a known picture, no detection in noise, bad files, resuming, near-duplicates.

The CI face is drawn by `faces.draw_face` (flat shapes in an anime layout: fringe, big eyes low on the face,
pointed chin), tuned until nagadomi's cascade finds it; so no artwork is shipped with the tests. The
`shared_data` test repeats the check on real Getchu faces.
"""
from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from common.crops import CROPS, DONE, CropFolder, finished_crops
from faces import AT, CANVAS, canvas_with, draw_face, png_header_only
from dataset.crop import crop_box, crop_folder, detect_faces, phash

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


def iou(a: tuple, b: tuple) -> float:
    ix = max(0, min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0]))
    iy = max(0, min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1]))
    return ix * iy / (a[2] * a[3] + b[2] * b[3] - ix * iy)


def enlarged(face: tuple, width: int = CANVAS[1], height: int = CANVAS[0]) -> tuple:
    x0, y0, side = crop_box(face[:4], width, height)
    return x0, y0, side, side


def test_finds_the_pasted_face():
    faces = detect_faces(canvas_with(draw_face(130)))
    assert len(faces) == 1
    assert iou(enlarged(faces[0]), (*AT, 130, 130)) >= 0.5


def test_finds_nothing_in_noise():
    noise = np.random.default_rng(0).integers(0, 256, (*CANVAS, 3), dtype=np.uint8)
    assert detect_faces(noise) == []


def test_crop_box_stays_inside_or_pads():
    assert crop_box((0, 0, 40, 40), 200, 200) == (0, 0, 60)         # moved inside at the corner
    assert crop_box((80, 80, 40, 40), 200, 200) == (70, 70, 60)     # centred
    assert crop_box((5, 5, 40, 40), 50, 50) == (-5, -5, 60)         # larger than the picture: padded
    assert crop_box((80, 80, 40, 40), 200, 200, enlarge=1.0) == (80, 80, 40)


def test_crop_folder_writes_crops_and_resumes(tmp_path):
    pictures, out = tmp_path / "in", tmp_path / "out"
    pictures.mkdir()
    Image.fromarray(canvas_with(draw_face(130))).save(pictures / "face.png")
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (*CANVAS, 3), dtype=np.uint8)).save(
        pictures / "noise.png")

    counts = crop_folder(pictures, out, resolution=64, workers=1)
    assert (counts["processed"], counts["crops"]) == (2, 1)
    record = json.loads((out / CROPS).read_text())
    assert record["source"] == "face.png" and record["neighbours"] >= 5
    assert iou(tuple(record["crop_box"]), (*AT, 130, 130)) >= 0.5
    assert Image.open(out / record["crop"]).size == (64, 64)

    before = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    again = crop_folder(pictures, out, resolution=64, workers=1)
    assert (again["processed"], again["already_done"]) == (0, 2)
    assert {p.name: p.stat().st_mtime_ns for p in out.iterdir()} == before


def test_interrupted_source_is_redone(tmp_path):
    pictures, out = tmp_path / "in", tmp_path / "out"
    pictures.mkdir()
    Image.fromarray(canvas_with(draw_face(130))).save(pictures / "face.png")
    crop_folder(pictures, out, workers=1)
    # As if killed after the crop records but before the done-record, with a torn line at the end.
    (out / DONE).write_text("")
    with open(out / CROPS, "a") as f:
        f.write('{"crop": "torn')
    counts = crop_folder(pictures, out, workers=1)
    assert counts["crops"] == 1
    assert len((out / CROPS).read_text().splitlines()) == 1


def test_near_duplicates_are_dropped(tmp_path):
    pictures, out = tmp_path / "in", tmp_path / "out"
    pictures.mkdir()
    canvas = canvas_with(draw_face(130))
    Image.fromarray(canvas).save(pictures / "a.png")
    Image.fromarray(canvas).save(pictures / "b.jpg", quality=80)        # recompressed copy
    counts = crop_folder(pictures, out, workers=1)
    assert (counts["faces"], counts["crops"], counts["duplicates"]) == (2, 1, 1)


def test_mirrored_crop_is_a_duplicate(tmp_path):
    # The cascade itself is not mirror-symmetric, so this checks the hash test on crops directly.
    def result(source: str, crop: np.ndarray) -> dict:
        return {"source": source, "stamp": [0, 0], "faces": 1, "crops": [
            {"box": [0, 0, 64, 64], "crop_box": [0, 0, 64, 64], "neighbours": 5, "phash": phash(crop),
             "mirror_phash": phash(crop[:, ::-1]), "data": b""}]}

    face = np.ascontiguousarray(np.asarray(Image.fromarray(draw_face(130)).resize((64, 64))))
    noise = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    folder = CropFolder(tmp_path)
    assert folder.add(result("a.png", face), "png") == (1, 0)
    assert folder.add(result("b.png", np.ascontiguousarray(face[:, ::-1])), "png") == (0, 1)
    assert folder.add(result("c.png", noise), "png") == (1, 0)


def test_bad_files_are_skipped_one_by_one(tmp_path, capsys):
    pictures, out = tmp_path / "in", tmp_path / "out"
    pictures.mkdir()
    face = canvas_with(draw_face(130))
    jpeg = io.BytesIO()
    Image.fromarray(face).save(jpeg, format="JPEG")
    (pictures / "truncated.jpg").write_bytes(jpeg.getvalue()[: len(jpeg.getvalue()) // 2])
    (pictures / "empty.png").write_bytes(b"")
    (pictures / "text.jpg").write_text("not an image")
    (pictures / "bomb.png").write_bytes(png_header_only(20000, 20000))
    Image.fromarray(face).convert("CMYK").save(pictures / "cmyk.jpg")
    Image.fromarray((np.asarray(Image.fromarray(face).convert("L")).astype(np.uint16) * 257)).save(
        pictures / "grey16.png")
    Image.fromarray(face).convert("P", palette=Image.Palette.ADAPTIVE).save(pictures / "palette.png",
                                                                            transparency=0)
    Image.fromarray(face).convert("L").save(pictures / "grey.png")
    Image.fromarray(face).convert("RGBA").save(pictures / "alpha.png")
    Image.new("RGB", (1, 4000), "white").save(pictures / "thin.png")       # would shrink to 0 px for the detector

    counts = crop_folder(pictures, out, workers=1)
    err = capsys.readouterr().err
    skipped = {json.loads(line)["source"] for line in (out / DONE).read_text().splitlines()
               if "error" in json.loads(line)}
    assert skipped == {"truncated.jpg", "empty.png", "text.jpg", "bomb.png", "thin.png"}
    assert "skipping bomb.png: DecompressionBombError" in err
    assert "skipping thin.png: ValueError: 1x4000 px is too small for the face detector" in err
    for name in skipped:
        assert f"skipping {name}: " in err
    assert counts["skipped"] == 5 and counts["processed"] == 10
    assert "10 pictures processed" in err
    # The five convertible pictures all decode to RGB; they are the same face, so one crop is kept.
    assert counts["faces"] >= 4 and counts["crops"] == 1
    # A re-run tries the five failures again (one may have been replaced) and only those.
    again = crop_folder(pictures, out, workers=1)
    assert (again["already_done"], again["processed"], again["skipped"]) == (5, 5, 5)


def test_thin_picture_is_refused_by_the_detector_not_opencv():
    with pytest.raises(ValueError, match="too small for the face detector"):
        detect_faces(np.full((40, 100000, 3), 255, np.uint8))      # 40 px high, shrunk to 1536 px long: 1 px


def pink_haired(face: np.ndarray) -> np.ndarray:
    """The same drawing with other hair: a different face to the duplicate filter, still found by the cascade."""
    face = face.copy()
    face[(face == (90, 60, 40)).all(-1)] = (230, 120, 170)
    return face


@pytest.mark.parametrize("first, second", [("x.png", "x.jpg"), ("a/b.png", "a__b.png")])
def test_sources_with_equal_stems_keep_their_own_crops(tmp_path, first, second):
    pictures, out = tmp_path / "in", tmp_path / "out"
    (pictures / "a").mkdir(parents=True)
    Image.fromarray(canvas_with(draw_face(130))).save(pictures / first)
    Image.fromarray(canvas_with(pink_haired(draw_face(130)))).save(pictures / second, quality=95)

    assert crop_folder(pictures, out, workers=1)["crops"] == 2
    records = [json.loads(line) for line in (out / CROPS).read_text().splitlines()]
    assert sorted(r["source"] for r in records) == sorted([first, second])
    names = [r["crop"] for r in records]
    assert len(set(names)) == 2 and all((out / name).is_file() for name in names)
    crops = {r["source"]: np.asarray(Image.open(out / r["crop"]), dtype=np.int16) for r in records}
    assert np.abs(crops[first] - crops[second]).max() > 50                   # each file holds its own face


@pytest.mark.parametrize("cut", [1, 10], ids=["newline", "mid-record"])
def test_torn_done_line_is_repaired(tmp_path, cut):
    pictures, out = tmp_path / "in", tmp_path / "out"
    pictures.mkdir()
    Image.fromarray(canvas_with(draw_face(130))).save(pictures / "a.png")
    Image.fromarray(canvas_with(pink_haired(draw_face(130)))).save(pictures / "b.png")
    crop_folder(pictures, out, workers=1)
    done = (out / DONE).read_text()
    (out / DONE).write_text(done[:-cut])                                    # killed while writing b's record
    Image.fromarray(np.full((*CANVAS, 3), 128, np.uint8)).save(pictures / "c.png")

    crop_folder(pictures, out, workers=1)
    records = [json.loads(line) for line in (out / DONE).read_text().splitlines()]
    assert sorted(r["source"] for r in records) == ["a.png", "b.png", "c.png"]
    assert crop_folder(pictures, out, workers=1)["processed"] == 0
    crop_records = [json.loads(line) for line in (out / CROPS).read_text().splitlines()]
    assert sorted(r["source"] for r in crop_records) == ["a.png", "b.png"]


def test_failed_and_replaced_pictures_are_cropped_again(tmp_path):
    pictures, out = tmp_path / "in", tmp_path / "out"
    pictures.mkdir()
    Image.fromarray(canvas_with(draw_face(130))).save(pictures / "a.png")
    (pictures / "b.png").write_bytes(b"")                                    # a broken download
    first = crop_folder(pictures, out, workers=1)
    assert (first["crops"], first["skipped"]) == (1, 1)
    a_crop = json.loads((out / CROPS).read_text())["crop"]

    Image.fromarray(canvas_with(pink_haired(draw_face(130)))).save(pictures / "b.png")   # replaced
    second = crop_folder(pictures, out, workers=1)
    assert (second["already_done"], second["processed"], second["crops"], second["skipped"]) == (1, 1, 1, 0)
    b_crop = json.loads((out / CROPS).read_text().splitlines()[1])["crop"]
    assert sorted(finished_crops(out)) == sorted([a_crop, b_crop])

    # a.png is replaced by a picture without a face: its old crop must go, from the records and the disk.
    Image.fromarray(np.full((*CANVAS, 3), 128, np.uint8)).save(pictures / "a.png")
    third = crop_folder(pictures, out, workers=1)
    assert (third["already_done"], third["processed"], third["faces"], third["crops"]) == (1, 1, 0, 0)
    crop_records = [json.loads(line) for line in (out / CROPS).read_text().splitlines()]
    assert [r["source"] for r in crop_records] == ["b.png"] and finished_crops(out) == [b_crop]
    assert not (out / a_crop).exists()
    done = [json.loads(line) for line in (out / DONE).read_text().splitlines()]
    assert sorted(r["source"] for r in done) == ["a.png", "b.png"]             # one record per picture
    assert crop_folder(pictures, out, workers=1)["processed"] == 0


@pytest.mark.shared_data
def test_finds_real_getchu_faces():
    tar_path = SHARED / "getchu_extra_data_64px.tar"
    if not tar_path.is_file():
        pytest.skip(f"{tar_path} not present (../shared/data is not staged here)")
    found, tried = 0, 0
    with tarfile.open(tar_path) as tar:
        for member in tar:
            if not member.name.endswith(".jpg"):
                continue
            face = np.asarray(Image.open(tar.extractfile(member)).convert("RGB").resize((128, 128)))
            faces = detect_faces(canvas_with(face, background=(255, 255, 255)))
            # These crops were cut at the cascade's own box (no enlargement), so the box itself should match.
            found += any(iou(f[:4], (*AT, 128, 128)) >= 0.5 for f in faces)
            tried += 1
            if tried == 20:
                break
    assert found >= 18, f"found {found} of {tried} pasted Getchu faces"
