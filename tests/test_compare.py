"""`kyara judge compare`: models' rows from the same noise above a row of real faces, at the blind sheets' size."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from common.packed import PackedSet
from conftest import make_tiny_packed
from kyara.cli import main
from judge.blind import COLS, FACE, LABEL, ROWS, enlarged
from judge.counts import CALLS, paired_tally, read_calls
from training.checkpoint import resolve_checkpoint
from training.config import load_config
from training.trainer import train

ROW = FACE + LABEL


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    tmp = tmp_path_factory.mktemp("compare")
    packed = make_tiny_packed(tmp / "packed")
    train(load_config("tiny"), packed, tmp / "run", device="cpu", steps=20)   # checkpoints at 10 and 20
    return tmp / "run", packed


def _rows(path: Path, n: int) -> list[np.ndarray]:
    sheet = np.asarray(Image.open(path))
    assert sheet.shape[1] == n * FACE
    return [sheet[r * ROW + LABEL:(r + 1) * ROW] for r in range(sheet.shape[0] // ROW)]


def test_compare_draws_each_model_from_the_same_noise_above_real_faces(run: tuple[Path, Path],
                                                                       tmp_path: Path) -> None:
    run_dir, packed = run
    checkpoints = sorted((run_dir / "checkpoints").iterdir())
    out = tmp_path / "a.png"
    assert main(["judge", "compare", str(checkpoints[0]), str(checkpoints[-1]), str(checkpoints[-1]),
                 "--data", str(packed), "-n", "5", "--seed", "3", "-o", str(out)]) == 0
    first, last, again, real = _rows(out, 5)
    assert np.array_equal(last, again) and not np.array_equal(first, last)

    data = PackedSet.open(packed)
    val = data.indices("val")
    pick = np.sort(np.random.default_rng(3).choice(val, 5, replace=False))
    expected = np.concatenate([np.asarray(enlarged(data.images[i])) for i in pick], axis=1)
    assert np.array_equal(real, expected)

    other = tmp_path / "b.png"
    assert main(["judge", "compare", str(checkpoints[-1]), "--data", str(packed), "-n", "5", "--seed", "4",
                 "-o", str(other)]) == 0
    assert not np.array_equal(_rows(other, 5)[0], last)


def test_compare_names_a_missing_packed_set_before_drawing(run: tuple[Path, Path], tmp_path: Path,
                                                           capsys: pytest.CaptureFixture) -> None:
    run_dir, _ = run
    assert main(["judge", "compare", str(run_dir), "--data", str(tmp_path / "nowhere"), "-o", str(tmp_path / "x.png")]) != 0
    err = capsys.readouterr().err
    assert err.startswith("kyara judge compare: ") and "nowhere" in err and err.count("\n") == 1
    assert not (tmp_path / "x.png").exists()


def test_each_truncation_is_a_row_of_its_own_from_the_same_noise(run: tuple[Path, Path], tmp_path: Path) -> None:
    """--truncation 1,0.5: the first row is the model's plain row, the second its noise drawn in by half,
    which is what the model makes from half the noise."""
    from export.adapters import draw, open_source
    run_dir, packed = run
    plain, both = tmp_path / "plain.png", tmp_path / "both.png"
    assert main(["judge", "compare", str(run_dir), "--data", str(packed), "-n", "4", "--seed", "5", "-o", str(plain)]) == 0
    assert main(["judge", "compare", str(run_dir), "--data", str(packed), "-n", "4", "--seed", "5",
                 "--truncation", "1,0.5", "-o", str(both)]) == 0
    as_drawn, drawn_in, real = _rows(both, 4)
    assert np.array_equal(as_drawn, _rows(plain, 4)[0]) and np.array_equal(real, _rows(plain, 4)[1])
    source = open_source(run_dir)
    noise, labels = draw(source, 4, 5)
    half = source.generate(noise * np.float32(0.5), labels)
    assert np.array_equal(drawn_in, np.concatenate([np.asarray(enlarged(face)) for face in half], axis=1))
    assert not np.array_equal(drawn_in, as_drawn)


def test_blind_sheets_of_a_model_and_real_faces_then_the_count(run: tuple[Path, Path], tmp_path: Path,
                                                               capsys: pytest.CaptureFixture) -> None:
    run_dir, packed = run
    out = tmp_path / "blind"
    assert main(["judge", "blind", str(run_dir), "--data", str(packed), "-n", "5", "-o", str(out)]) == 0
    key = json.loads((out / "key.json").read_text())
    real_kind = f"real (val split of {packed})"
    assert key["counts"] == {str(run_dir): 5, real_kind: 5}
    # The real faces on the sheet are val faces: each real number's pixels are one of them, enlarged.
    data = PackedSet.open(packed)
    val = {np.asarray(enlarged(data.images[i])).tobytes() for i in data.indices("val")}
    sheet = np.asarray(Image.open(out / "sheet_01.png"))
    for face in key["faces"]:
        r, c = divmod(face["number"] - 1, COLS)
        pixels = sheet[r * ROW + LABEL:(r + 1) * ROW, c * FACE:(c + 1) * FACE]
        assert (pixels.tobytes() in val) == (face["kind"] == real_kind), face

    # Calls written before the key: every face of the model broken, every real face good, one left out.
    model_numbers = [f["number"] for f in key["faces"] if f["kind"] == str(run_dir)]
    calls = [f"{f['number']}{'b' if f['kind'] == str(run_dir) else 'g'}" for f in key["faces"]
             if f["number"] != model_numbers[0]]
    (tmp_path / "calls.txt").write_text("# my count\n" + " ".join(calls) + "\n")
    capsys.readouterr()
    assert main(["judge", "count", str(out), str(tmp_path / "calls.txt")]) == 0
    printed = capsys.readouterr().out.splitlines()
    assert printed == [f"{run_dir}: 0 good, 0 flawed, 4 broken, 1 not judged (of 5; broken 80%)",
                       f"{real_kind}: 5 good, 0 flawed, 0 broken (of 5; broken 0%)"]


def test_blind_a_b_of_two_truncations_has_no_real_faces(run: tuple[Path, Path], tmp_path: Path) -> None:
    run_dir, _ = run
    out = tmp_path / "ab"
    assert main(["judge", "blind", str(run_dir), "--truncation", "1,0.5", "-n", "4", "-o", str(out)]) == 0
    key = json.loads((out / "key.json").read_text())
    assert key["counts"] == {str(run_dir): 4, f"{run_dir}, truncation 0.5": 4}


@pytest.mark.parametrize("args, message", [
    (["--truncation", "1,0.7,0.5"], "make 3"),
    ([], "give --data"),
])
def test_blind_refuses_what_it_cannot_compare_before_drawing(run: tuple[Path, Path], tmp_path: Path, args: list,
                                                             message: str, capsys: pytest.CaptureFixture) -> None:
    run_dir, _ = run
    assert main(["judge", "blind", str(run_dir), *args, "-o", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and not (tmp_path / "x").exists()


@pytest.mark.parametrize("calls, message", [("1b 2x", "'2x' is not a face number"), ("1b 1f", "face 1 is called twice"),
                                            ("99b", "'99b' is not a face number 1-8")])
def test_blind_count_names_a_bad_call(run: tuple[Path, Path], tmp_path: Path, calls: str, message: str,
                                      capsys: pytest.CaptureFixture) -> None:
    run_dir, _ = run
    assert main(["judge", "blind", str(run_dir), "--truncation", "1,0.5", "-n", "4", "-o", str(tmp_path / "ab")]) == 0
    (tmp_path / "calls.txt").write_text(calls)
    capsys.readouterr()
    assert main(["judge", "count", str(tmp_path / "ab"), str(tmp_path / "calls.txt")]) == 2
    err = capsys.readouterr().err
    assert message in err and "calls.txt" in err and err.count("\n") == 1


def _faces_by_number(out: Path, key: dict) -> dict[int, bytes]:
    sheets = {name: np.asarray(Image.open(out / name)) for name in key["sheets"]}
    faces = {}
    for face in key["faces"]:
        r, c = divmod((face["number"] - 1) % (COLS * ROWS), COLS)
        faces[face["number"]] = sheets[face["sheet"]][r * ROW + LABEL:(r + 1) * ROW, c * FACE:(c + 1) * FACE].tobytes()
    return faces


def test_paired_blind_draws_each_face_a_twin_from_the_same_inputs(run: tuple[Path, Path], tmp_path: Path,
                                                                   capsys: pytest.CaptureFixture) -> None:
    run_dir, _ = run
    # The same weights under two names: twins drawn from the same noise and tags are the same picture.
    same = [str(run_dir), str(resolve_checkpoint(run_dir))]
    assert main(["judge", "blind", *same, "--paired", "-n", "6", "--seed", "3", "-o", str(tmp_path / "paired")]) == 0
    assert main(["judge", "blind", *same, "-n", "6", "--seed", "3", "-o", str(tmp_path / "apart")]) == 0
    key = json.loads((tmp_path / "paired" / "key.json").read_text())
    faces = _faces_by_number(tmp_path / "paired", key)
    kind = {f["number"]: f["kind"] for f in key["faces"]}
    for face in key["faces"]:
        assert kind[face["twin"]] != face["kind"] and faces[face["twin"]] == faces[face["number"]], face
    apart = json.loads((tmp_path / "apart" / "key.json").read_text())
    assert not any("twin" in f for f in apart["faces"])
    apart_faces = _faces_by_number(tmp_path / "apart", apart)
    first = {apart_faces[f["number"]] for f in apart["faces"] if f["kind"] == same[0]}
    assert not first & {apart_faces[f["number"]] for f in apart["faces"] if f["kind"] == same[1]}

    # Calls: the first model's faces good, their twins broken, except one pair called the same, one left out.
    firsts = [f for f in key["faces"] if f["kind"] == same[0]]
    calls = [f"{f['number']}g {f['twin']}b" for f in firsts[:4]] + [f"{firsts[4]['number']}f {firsts[4]['twin']}f",
                                                                    f"{firsts[5]['number']}g"]
    (tmp_path / "calls.txt").write_text(" ".join(calls))
    capsys.readouterr()
    assert main(["judge", "count", str(tmp_path / "paired"), str(tmp_path / "calls.txt")]) == 0
    # 4 wins and no loss: p = 2 / 2**4 = 0.125.
    assert paired_tally(key, read_calls(tmp_path / "calls.txt", len(key["faces"])))["p"] == 0.125
    assert capsys.readouterr().out.splitlines()[-1] == (
        f"twin against twin: {same[0]} better in 4, {same[1]} better in 0, the same in 1, 1 not judged "
        "(sign test p = 0.12)")


def test_paired_blind_refuses_real_faces_before_drawing(run: tuple[Path, Path], tmp_path: Path,
                                                        capsys: pytest.CaptureFixture) -> None:
    run_dir, packed = run
    assert main(["judge", "blind", str(run_dir), "--data", str(packed), "--paired", "-o", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err
    assert "no generated twin" in err and err.count("\n") == 1 and not (tmp_path / "x").exists()


def _twin_key(pairs: int) -> dict:
    """A key of `pairs` twins: first-kind face i is number i + 1, its twin number pairs + i + 1."""
    faces = [{"number": i + 1, "kind": "A", "twin": pairs + i + 1} for i in range(pairs)]
    faces += [{"number": pairs + i + 1, "kind": "B", "twin": i + 1} for i in range(pairs)]
    return {"faces": faces, "counts": {"A": pairs, "B": pairs}}


@pytest.mark.parametrize("a_calls, b_calls, expected", [
    ("ggggg", "ggggg", (0, 0, 5, 1.0)),                    # nothing called differently: no evidence either way
    ("g" * 9 + "b" * 7, "f" * 16, (9, 7, 0, 0.8036)),        # 2 * P(X <= 7), X ~ Binomial(16, 1/2)
    ("bfgfb", "fbfgb", (2, 2, 1, 1.0)),                    # broken < flawed < good, each way twice
    ("ggggggbb", "bbbbbbgg", (6, 2, 0, 0.2891)),
])
def test_paired_tally_ranks_twins_and_runs_the_sign_test(a_calls: str, b_calls: str, expected: tuple) -> None:
    n = len(a_calls)
    calls = {i + 1: CALLS[c] for i, c in enumerate(a_calls)} | {n + i + 1: CALLS[c] for i, c in enumerate(b_calls)}
    got = paired_tally(_twin_key(n), calls)
    assert (got["first better"], got["second better"], got["same"]) == expected[:3]
    assert got["p"] == pytest.approx(expected[3], abs=1e-4) and got["not judged"] == 0
    assert paired_tally({**_twin_key(n), "faces": [{k: v for k, v in f.items() if k != "twin"}
                                                   for f in _twin_key(n)["faces"]]}, calls) is None


def test_paired_blind_refuses_models_of_other_priors_before_drawing(run: tuple[Path, Path], tmp_path: Path,
                                                                  capsys: pytest.CaptureFixture) -> None:
    run_dir, _ = run
    other = make_tiny_packed(tmp_path / "other", seed=1)      # the same tags, other shares of each colour
    train(load_config("tiny"), other, tmp_path / "other-run", device="cpu", steps=2)
    capsys.readouterr()
    assert main(["judge", "blind", str(run_dir), str(tmp_path / "other-run"), "--paired", "-o", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err
    assert "--paired needs the same tags" in err and str(tmp_path / "other-run") in err
    assert err.count("\n") == 1 and not (tmp_path / "x").exists()


def test_hd_blind_sheets_show_upscaled_faces_at_their_size_and_count_sources(run: tuple[Path, Path], tmp_path: Path,
                                                                          capsys: pytest.CaptureFixture) -> None:
    """--scale 2 with real faces: every face (the real ones too, through the same upscaler) is 2x its size
    on the sheet; blind-count reads the optional source guess (r / m) and says how often it was right."""
    from export.adapters import upscaled

    run_dir, packed = run
    out = tmp_path / "hd"
    assert main(["judge", "blind", str(run_dir), "--data", str(packed), "--scale", "2", "-n", "3", "-o", str(out)]) == 0
    key = json.loads((out / "key.json").read_text())
    data = PackedSet.open(packed)
    side = 2 * data.images.shape[1]
    real_kind = f"real (val split of {packed}), x2 upscaler"
    assert key["counts"] == {f"{run_dir}, x2 upscaler": 3, real_kind: 3}
    sheet = np.asarray(Image.open(out / "sheet_01.png"))
    assert sheet.shape[1] == COLS * side
    val = {upscaled(data.images[i][None], 2)[0].tobytes() for i in data.indices("val")}
    for face in key["faces"]:
        r, c = divmod(face["number"] - 1, COLS)
        pixels = sheet[r * (side + LABEL) + LABEL:(r + 1) * (side + LABEL), c * side:(c + 1) * side]
        assert (pixels.tobytes() in val) == (face["kind"] == real_kind), face

    # Every guess right but one: the first real face called made.
    first_real = next(f["number"] for f in key["faces"] if f["kind"] == real_kind)
    calls = [f"{f['number']}f{'r' if f['kind'] == real_kind and f['number'] != first_real else 'm'}"
             for f in key["faces"]]
    (tmp_path / "calls.txt").write_text(" ".join(calls))
    capsys.readouterr()
    assert main(["judge", "count", str(out), str(tmp_path / "calls.txt")]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == "source told right: 5 of 6 faces (83%; 50 % is chance)"


def test_hd_blind_a_b_of_two_upscalers_is_paired_on_one_model(run: tuple[Path, Path], tmp_path: Path,
                                                               capsys: pytest.CaptureFixture) -> None:
    """The bundled upscaler against bicubic, or against another upscaler folder, on one model, paired: twins
    are the same face enlarged two ways. A folder that is no upscaler is refused before anything is drawn."""
    from export.adapters import upscaled

    run_dir, _ = run
    upscaler = Path(__file__).resolve().parents[1] / "models" / "upscaler"
    for other in ("bicubic", str(upscaler)):
        out = tmp_path / Path(other).name
        assert main(["judge", "blind", str(run_dir), "--scale", "2", "--upscale", f"upscaler,{other}", "--paired", "-n", "3",
                     "-o", str(out)]) == 0
        key = json.loads((out / "key.json").read_text())
        assert key["counts"] == {f"{run_dir}, x2 upscaler": 3, f"{run_dir}, x2 {other}": 3}
        assert all("twin" in face for face in key["faces"])
    faces = np.random.default_rng(0).integers(0, 256, (2, 16, 16, 3), dtype=np.uint8)
    assert np.array_equal(upscaled(faces, 2, str(upscaler)), upscaled(faces, 2))
    assert main(["judge", "blind", str(run_dir), "--scale", "2", "--upscale", f"upscaler,{tmp_path}", "-o",
                 str(tmp_path / "x")]) == 2
    assert "not bicubic, upscaler, or an upscaler folder" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


def test_paired_inputs_ask_a_model_with_more_tags_for_its_extra_ones_off():
    """v6 carried on to `male` against v5 without it: the same faces over the tags both know, male off."""
    from common.vocab import Vocabulary
    from export.adapters import Source
    from judge.compare import paired_inputs

    def source(tags: list[str], priors: dict[str, float]) -> Source:
        vocab = Vocabulary(tags)
        return Source(lambda noise, labels: noise, vocab, np.array([priors[t] for t in vocab.tags], np.float32), 4)

    v5 = source(["blue hair", "red hair", "smile"], {"blue hair": 0.5, "red hair": 0.5, "smile": 0.3})
    v6 = source(["blue hair", "red hair", "smile", "male"], {"blue hair": 0.5, "red hair": 0.5, "smile": 0.3,
                                                             "male": 0.2})
    (noise_a, labels_a), (noise_b, labels_b) = paired_inputs([("v6", v6), ("v5", v5)], 50, seed=1)
    assert np.array_equal(noise_a, noise_b)
    assert not labels_a[:, v6.vocab.index("male")].any()
    assert np.array_equal(labels_a[:, [v6.vocab.index(t) for t in v5.vocab.tags]], labels_b)
    other = source(["blue hair", "red hair", "smile"], {"blue hair": 0.9, "red hair": 0.1, "smile": 0.3})
    with pytest.raises(ValueError, match="the same tag priors"):
        paired_inputs([("v5", v5), ("other", other)], 5, seed=1)
