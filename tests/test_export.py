"""Export: ONNX parity with PyTorch, the int8 model's fidelity, the manifest, and the torch-free runtime. One
file, long because they share one exported model made once per module (exporting is the slow part).

One tiny random generator (BatchNorm statistics randomised, so folding is really exercised) is saved as a
checkpoint and exported once per test module through the CLI; a second one has the at-most-one hair-length
group.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from PIL import Image

from common.vocab import TagError, Vocabulary
from export.manifest import MANIFEST_KEY, build_manifest, sha256_of, with_hashes, without_hashes
from export.quantize import generator_inputs, psnr
from export.runtime import Generator as OnnxGenerator
from kyara.cli import main
from tiny_model import HAIR_LENGTH_PRIORS, HAIR_LENGTH_TAGS, export_tiny, tiny_checkpoint
from training.checkpoint import load_generator
from training.grid import to_uint8

TAGS = ["blonde hair", "red hair", "silver hair", "smile", "hat", "blue eyes", "red eyes"]
PRIORS = [0.3, 0.5, 0.2, 0.6, 0.4, 0.7, 0.3]


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_checkpoint(tmp_path_factory.mktemp("run"), TAGS, PRIORS)


@pytest.fixture(scope="module")
def model_dir(checkpoint: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return export_tiny(checkpoint, tmp_path_factory.mktemp("model"))


@pytest.fixture(scope="module")
def hair_length_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A model whose tags include the at-most-one hair-length group."""
    ckpt = tiny_checkpoint(tmp_path_factory.mktemp("run"), HAIR_LENGTH_TAGS, HAIR_LENGTH_PRIORS)
    return export_tiny(ckpt, tmp_path_factory.mktemp("model"), default="fp32")


@pytest.fixture(scope="module")
def chroma_blur_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_checkpoint(tmp_path_factory.mktemp("run"), TAGS, PRIORS, chroma_blur=True)


def manifest_of(model_dir: Path) -> dict:
    return json.loads((model_dir / "manifest.json").read_text())


def session(path: Path) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def test_manifest_beside_and_inside_agree(model_dir: Path) -> None:
    manifest = manifest_of(model_dir)
    assert manifest["file"] == "model.int8.onnx"
    assert manifest["tags"] == list(Vocabulary(TAGS).tags)
    assert manifest["noise_dim"] == 16 and manifest["resolution"] == 32
    assert manifest["training"]["steps"] == 10 and manifest["training"]["data"] == "test fixture"
    assert manifest["training"]["eval"] == {"score": 0.5, "fid": None}   # headline figures only
    hair = next(g for g in manifest["groups"] if g["name"] == "hair colour")
    assert hair["exclusive"] and hair["priors"] == [0.3, 0.5, 0.2]
    assert {v["precision"] for v in manifest["variants"]} == {"fp32", "int8", "compact"}
    for variant in manifest["variants"]:
        path = model_dir / variant["file"]
        assert variant["bytes"] == path.stat().st_size and variant["sha256"] == sha256_of(path)
        props = {p.key: p.value for p in onnx.load(str(path)).metadata_props}
        assert json.loads(props[MANIFEST_KEY]) == without_hashes(manifest)
    assert manifest["sha256"] == sha256_of(model_dir / "model.int8.onnx")


def test_manifest_marks_at_most_one_groups(hair_length_dir: Path) -> None:
    """A caller reading only the manifest must learn that long and short hair exclude each other."""
    manifest = manifest_of(hair_length_dir)
    groups = {g["name"]: g for g in manifest["groups"]}
    assert groups["hair length"] == {"name": "hair length", "exclusive": False, "at_most_one": True,
                                     "tags": ["long hair", "short hair"], "priors": [0.5, 0.3]}
    assert all("at_most_one" not in g for name, g in groups.items() if name != "hair length")
    assert "at most one tag on in each at_most_one group" in manifest["label_encoding"]["rule"]
    props = {p.key: p.value for p in onnx.load(str(hair_length_dir / "model.onnx")).metadata_props}
    assert json.loads(props[MANIFEST_KEY]) == without_hashes(manifest)
    with pytest.raises(TagError, match="'long hair' and 'short hair' are both in the at-most-one group"):
        OnnxGenerator(hair_length_dir, threads=1).generate(tags=["long hair", "short hair"])


MODEL_DIR = Path(__file__).resolve().parents[1] / "models" / "default"


@pytest.mark.skipif(not (MODEL_DIR / "manifest.json").is_file(), reason=f"no bundled model at {MODEL_DIR}")
def test_colour_only_manifest_is_unchanged() -> None:
    """The bundled model's manifest.json and embedded copies, rebuilt by today's build_manifest from what
    they hold, come out byte for byte as they were exported: a colour-only model gains no new field."""
    text = (MODEL_DIR / "manifest.json").read_text()
    shipped = json.loads(text)
    priors = {t: p for g in shipped["groups"] for t, p in zip(g["tags"], g["priors"])}
    rebuilt = build_manifest(
        name=shipped["name"], version=shipped["version"], vocab=Vocabulary(shipped["tags"]),
        priors=[priors[t] for t in shipped["tags"]], resolution=shipped["resolution"],
        noise_dim=shipped["noise_dim"], default_file=shipped["file"],
        variants=without_hashes(shipped)["variants"], training=shipped["training"],
        truncation=shipped["inputs"][0].get("truncation", 1.0))
    assert json.dumps(with_hashes(rebuilt, MODEL_DIR), indent=2) + "\n" == text
    for variant in shipped["variants"]:
        props = {p.key: p.value for p in onnx.load(str(MODEL_DIR / variant["file"])).metadata_props}
        assert props[MANIFEST_KEY] == json.dumps(rebuilt, sort_keys=True)


def test_graph_has_folded_batchnorm_and_dynamic_batch(model_dir: Path) -> None:
    model = onnx.load(str(model_dir / "model.onnx"))
    assert model.opset_import[0].version >= 17
    # Only blocks_bn (after a residual sum) may remain.
    assert [n.op_type for n in model.graph.node].count("BatchNormalization") <= 1
    rgba = next(o for o in model.graph.output if o.name == "rgba")
    assert rgba.type.tensor_type.elem_type == onnx.TensorProto.UINT8
    assert rgba.type.tensor_type.shape.dim[0].dim_param
    assert [d.dim_value for d in rgba.type.tensor_type.shape.dim[1:]] == [32, 32, 4]


def test_every_file_makes_its_rgba_bytes_from_its_own_image_with_quantize_linear(model_dir: Path) -> None:
    """The bytes are exactly round((clamp(image) + 1) * 127.5) of the same file's float output, made by a
    QuantizeLinear rather than the Cast torch.onnx writes (slow in onnxruntime-web), in all three files."""
    inputs = generator_inputs(manifest_of(model_dir), 16, seed=5)
    for file in ("model.onnx", "model.int8.onnx", "model.compact.onnx"):
        graph = onnx.load(str(model_dir / file)).graph
        assert next(n for n in graph.node if "rgba" in n.output).op_type == "QuantizeLinear", file
        rgba, image = session(model_dir / file).run(["rgba", "image"], inputs)
        expected = np.round((np.clip(image, -1, 1) + np.float32(1)) * np.float32(127.5)).transpose(0, 2, 3, 1)
        assert (rgba[..., :3] == expected).all(), file


def test_fp32_onnx_matches_pytorch(model_dir: Path, checkpoint: Path) -> None:
    generator, *_ = load_generator(checkpoint)
    inputs = generator_inputs(manifest_of(model_dir), 16, seed=3)
    rgba, image = session(model_dir / "model.onnx").run(["rgba", "image"], inputs)
    with torch.no_grad():
        expected = generator(torch.from_numpy(inputs["noise"]), torch.from_numpy(inputs["labels"]))
    assert np.abs(image - expected.numpy()).max() <= 1e-4
    assert np.abs(rgba[..., :3].astype(int) - to_uint8(expected).astype(int)).max() <= 1
    assert (rgba[..., 3] == 255).all() and rgba.shape == (16, 32, 32, 4)


def test_a_chroma_blur_model_exports_with_its_blur_in_float(chroma_blur_checkpoint: Path, tmp_path: Path) -> None:
    """G's fixed chroma blur is in the graph (the ONNX faces match PyTorch's, which are blurred), and the
    compact and int8 variants keep it in float with the last conv, as they keep the pixels' own layers."""
    out = export_tiny(chroma_blur_checkpoint, tmp_path / "m", default="compact")
    generator, *_ = load_generator(chroma_blur_checkpoint)
    assert generator.chroma_blur is not None
    inputs = generator_inputs(manifest_of(out), 16, seed=3)
    image, = session(out / "model.onnx").run(["image"], inputs)
    with torch.no_grad():
        expected = generator(torch.from_numpy(inputs["noise"]), torch.from_numpy(inputs["labels"]))
    assert np.abs(image - expected.numpy()).max() <= 1e-4
    ops = [n.op_type for n in onnx.load(str(out / "model.compact.onnx")).graph.node]
    # one DequantizeLinear for the dense layer and each conv but two: the last conv and the blur stay float
    assert "Concat" in ops and ops.count("DequantizeLinear") == 1 + ops.count("Conv") - 2   # Concat: the edge pad
    int8 = onnx.load(str(out / "model.int8.onnx"))
    producer = {o: n for n in int8.graph.node for o in n.output}
    clip = producer["image"]
    blur = producer[clip.input[0]]
    assert (clip.op_type, blur.op_type) == ("Clip", "Conv")
    assert not any(i in producer and producer[i].op_type == "DequantizeLinear" for i in blur.input)
    assert psnr(out / "model.onnx", out / "model.compact.onnx", manifest_of(out), n=64) >= 35.0


def test_int8_close_to_fp32(model_dir: Path) -> None:
    manifest = manifest_of(model_dir)
    assert psnr(model_dir / "model.onnx", model_dir / "model.int8.onnx", manifest, n=256) >= 30.0
    sizes = {v["precision"]: v["bytes"] for v in manifest["variants"]}
    assert sizes["int8"] < sizes["fp32"]


def test_compact_has_small_weights_and_float_arithmetic(model_dir: Path) -> None:
    """The page's default: int8's download size class without integer kernels (slow in the browser's WASM)."""
    manifest = manifest_of(model_dir)
    compact = onnx.load(str(model_dir / "model.compact.onnx"))
    ops = [n.op_type for n in compact.graph.node if "rgba" not in n.output]   # rgba's bytes: a QuantizeLinear
    assert "QuantizeLinear" not in ops and "ConvInteger" not in ops            # fp32 activations throughout
    assert ops.count("DequantizeLinear") == ops.count("Conv")                  # every weight but the last conv's ...
    stored = {t.data_type for t in compact.graph.initializer}
    assert onnx.TensorProto.INT8 in stored and onnx.TensorProto.INT4 in stored  # ... is stored in 8 or 4 bits
    sizes = {v["precision"]: v["bytes"] for v in manifest["variants"]}
    assert sizes["compact"] < sizes["fp32"] / 2.5        # the tiny test model: biases and norms weigh more
    assert psnr(model_dir / "model.onnx", model_dir / "model.compact.onnx", manifest, n=256) >= 35.0
    variant = next(v for v in manifest["variants"] if v["precision"] == "compact")
    assert variant["psnr_db_vs_fp32"] >= 35.0 and "fp32 arithmetic" in variant["quantization"]


def test_compact_weights_are_expanded_once_at_load(model_dir: Path, tmp_path: Path) -> None:
    """The compact variant's session config makes onnxruntime fold its DequantizeLinear nodes into fp32 weights
    when the session is created (without it they run on every call); the runtime opens the file with it."""
    from export.runtime import Generator, open_session, session_config

    compact = model_dir / "model.compact.onnx"
    config = session_config(manifest_of(model_dir), compact.name)
    assert config and Generator(compact).session_config == config
    assert Generator(model_dir / "model.onnx").session_config == {}
    ran = {}
    for name, entries in (("plain", {}), ("configured", config)):
        open_session(compact, 1, entries, optimized_copy=tmp_path / f"{name}.onnx")
        ran[name] = [n.op_type for n in onnx.load(str(tmp_path / f"{name}.onnx")).graph.node]
    assert "DequantizeLinear" in ran["plain"] and "DequantizeLinear" not in ran["configured"]
    assert ran["configured"].count("Conv") + ran["configured"].count("FusedConv") >= 3


def test_export_defaults_to_the_compact_variant(checkpoint: Path, tmp_path: Path) -> None:
    from kyara.cli import main
    assert main(["export", str(checkpoint), "-o", str(tmp_path / "m")]) == 0
    assert manifest_of(tmp_path / "m")["file"] == "model.compact.onnx"


def test_a_truncated_export_is_g_of_the_drawn_in_noise(checkpoint: Path, model_dir: Path, tmp_path: Path) -> None:
    """--truncation 0.5 puts the factor in the weights: the model takes standard normal noise z and makes
    G(0.5 z), what `kyara eval --truncation 0.5` measures on the checkpoint; the manifest says so."""
    from export.adapters import open_source, truncated
    out = tmp_path / "m"
    assert main(["export", str(checkpoint), "-o", str(out), "--default", "fp32", "--truncation", "0.5"]) == 0
    manifest = manifest_of(out)
    assert manifest["inputs"][0] == {**manifest["inputs"][0], "name": "noise", "truncation": 0.5}
    generator, *_ = load_generator(checkpoint)
    inputs = generator_inputs(manifest, 16, seed=3)
    (image,) = session(out / "model.onnx").run(["image"], inputs)
    with torch.no_grad():
        drawn_in = generator(torch.from_numpy(inputs["noise"] * 0.5), torch.from_numpy(inputs["labels"]))
        as_drawn = generator(torch.from_numpy(inputs["noise"]), torch.from_numpy(inputs["labels"]))
    assert np.abs(image - drawn_in.numpy()).max() <= 1e-4
    assert np.abs(image - as_drawn.numpy()).max() > 1e-2

    exported, measured = open_source(out), truncated(open_source(checkpoint), 0.5)
    assert exported.truncation == measured.truncation == 0.5
    faces = exported.generate(inputs["noise"], inputs["labels"])
    assert np.abs(faces.astype(int) - measured.generate(inputs["noise"], inputs["labels"]).astype(int)).max() <= 1
    assert truncated(exported, 0.5).truncation == 0.25     # eval's truncation comes on top of the model's
    assert "truncation" not in manifest_of(model_dir)["inputs"][0]     # untruncated: the manifest as it was


@pytest.mark.parametrize("value", ["0", "1.5", "half"])
def test_export_refuses_a_truncation_outside_0_to_1(checkpoint: Path, tmp_path: Path, value: str,
                                                    capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as info:     # refused by the parser, before the checkpoint is read
        main(["export", str(checkpoint), "-o", str(tmp_path / "m"), "--truncation", value])
    assert info.value.code == 2
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert "argument --truncation" in last and repr(value) in last
    assert not (tmp_path / "m").exists()


def test_runtime_is_deterministic_per_seed(model_dir: Path) -> None:
    generator = OnnxGenerator(model_dir / "model.onnx", threads=1)
    a = generator.generate(tags=["silver hair", "red eyes"], n=4, seed=7)
    b = generator.generate(tags="silver hair, red eyes", n=4, seed=7)
    c = generator.generate(tags=["silver hair", "red eyes"], n=4, seed=8)
    assert len(a) == 4 and a[0].size == (32, 32) and a[0].mode == "RGB"
    assert all(np.array_equal(np.asarray(x), np.asarray(y)) for x, y in zip(a, b))
    assert not np.array_equal(np.asarray(a[0]), np.asarray(c[0]))


def test_runtime_labels_follow_tags_and_groups(model_dir: Path) -> None:
    generator = OnnxGenerator(model_dir, threads=1)
    vocab = generator.vocab
    _, labels = generator.inputs(tags=["silver hair", "hat"], n=200, seed=1)
    assert (labels[:, vocab.index("silver hair")] == 1).all() and (labels[:, vocab.index("hat")] == 1).all()
    for group in vocab.exclusive_groups:
        assert (labels[:, [vocab.index(t) for t in group.tags]].sum(1) == 1).all()
    _, free = generator.inputs(n=2000, seed=2)
    blue = free[:, vocab.index("blue eyes")].mean()      # prior 0.7 against red eyes 0.3
    assert 0.6 < blue < 0.8
    # Fixing one group leaves the other draws (and the noise) as they were for the seed.
    noise_a, a = generator.inputs(n=50, seed=5)
    noise_b, b = generator.inputs(tags=["blonde hair"], n=50, seed=5)
    eyes = [vocab.index(t) for t in ("blue eyes", "red eyes")]
    assert np.array_equal(noise_a, noise_b) and np.array_equal(a[:, eyes], b[:, eyes])


def test_runtime_imports_no_torch(model_dir: Path) -> None:
    code = (
        "import sys\n"
        "from export.runtime import Generator\n"
        f"faces = Generator({str(model_dir)!r}, threads=1).generate(n=2, seed=0)\n"
        "assert len(faces) == 2\n"
        "bad = [m for m in ('torch', 'training') if m in sys.modules]\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).parents[1])


@pytest.mark.parametrize("kwargs, message", [
    ({"tags": ["purple hair"]}, "'purple hair'"),
    ({"tags": ["blonde hair", "red hair"]}, "'blonde hair' and 'red hair'"),
    ({"tags": ["not a tag"]}, "'not a tag'"),
    ({"n": 2, "noise": np.zeros((2, 15), np.float32)}, "noise has shape (2, 15)"),
    ({"noise": np.zeros((3, 15), np.float32)}, "noise of shape (3, 16) for n=3"),
    ({"n": 2, "noise": np.zeros((3, 16), np.float32)}, "noise of shape (2, 16) for n=2"),
    ({"n": 0}, "n must be at least 1"),
])
def test_runtime_bad_inputs(model_dir: Path, kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError) as info:
        OnnxGenerator(model_dir, threads=1).generate(**kwargs)
    assert message in str(info.value) and "\n" not in str(info.value)
    if "tags" in kwargs:
        assert isinstance(info.value, TagError)


def test_runtime_bad_model_files(tmp_path: Path) -> None:
    def one_line_error(expected: type, match: str, path: Path) -> None:
        with pytest.raises(expected, match=match) as info:
            OnnxGenerator(path)
        assert "\n" not in str(info.value)

    one_line_error(FileNotFoundError, "missing.onnx", tmp_path / "missing.onnx")
    one_line_error(FileNotFoundError, "manifest.json", tmp_path)
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"this is not a model")
    one_line_error(ValueError, "junk.onnx: not an ONNX model", junk)
    plain = tmp_path / "plain.onnx"
    x = onnx.helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1])
    graph = onnx.helper.make_graph([onnx.helper.make_node("Identity", ["x"], ["y"])], "g", [x],
                                   [onnx.helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1])])
    onnx.save(onnx.helper.make_model(graph, ir_version=10, opset_imports=[onnx.helper.make_opsetid("", 18)]),
              str(plain))
    one_line_error(ValueError, "plain.onnx: an ONNX model, but not one made by `kyara export`", plain)


def test_runtime_refuses_a_manifest_whose_groups_disagree(model_dir: Path, tmp_path: Path) -> None:
    model = onnx.load(str(model_dir / "model.onnx"))
    prop = next(p for p in model.metadata_props if p.key == MANIFEST_KEY)
    manifest = json.loads(prop.value)
    manifest["groups"][0]["exclusive"] = False       # "blonde hair" + "red hair" would then be allowed
    prop.value = json.dumps(manifest)
    onnx.save(model, str(tmp_path / "edited.onnx"))
    with pytest.raises(ValueError, match="edited.onnx: the manifest's tag groups differ"):
        OnnxGenerator(tmp_path / "edited.onnx")


@pytest.mark.parametrize("edit", ["drop it from hair length", "add it to expression"])
def test_runtime_refuses_a_manifest_whose_at_most_one_disagrees(hair_length_dir: Path, tmp_path: Path,
                                                                 edit: str) -> None:
    """Without `at_most_one` a page reading the manifest would offer long and short hair together."""
    model = onnx.load(str(hair_length_dir / "model.onnx"))
    prop = next(p for p in model.metadata_props if p.key == MANIFEST_KEY)
    manifest = json.loads(prop.value)
    groups = {g["name"]: g for g in manifest["groups"]}
    if edit == "drop it from hair length":
        del groups["hair length"]["at_most_one"]
    else:
        groups["expression and accessories"]["at_most_one"] = True
    prop.value = json.dumps(manifest)
    onnx.save(model, str(tmp_path / "edited.onnx"))
    with pytest.raises(ValueError, match="edited.onnx: the manifest's tag groups differ"):
        OnnxGenerator(tmp_path / "edited.onnx")


def test_generate_command_writes_pngs(model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "faces"
    assert main(["sample", str(model_dir / "model.onnx"), "--tags", "red eyes", "-n", "3", "--seed", "7",
                 "-o", str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == [f"seed7_{i:03d}.png" for i in range(3)]
    assert main(["sample", str(model_dir), "--tags", "blonde hair, red hair", "-o", str(out)]) == 2
    assert "'blonde hair' and 'red hair'" in capsys.readouterr().err


def test_export_command_missing_checkpoint(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["export", str(tmp_path / "nowhere"), "-o", str(tmp_path / "model")]) == 2
    err = capsys.readouterr().err
    assert "nowhere: no checkpoint here" in err and err.count("\n") == 1


def never_generate(*args: object) -> None:
    raise AssertionError("generated faces before checking the output")


@pytest.mark.parametrize("kind", ["under a file", "an existing file"])
def test_generate_checks_the_output_before_generating(model_dir: Path, tmp_path: Path, kind: str,
                                                      monkeypatch: pytest.MonkeyPatch,
                                                      capsys: pytest.CaptureFixture) -> None:
    (tmp_path / "faces").write_bytes(b"")        # a file where the folder of faces would go
    out, message = {"under a file": (tmp_path / "faces" / "x", f"{tmp_path / 'faces'} is not a folder"),
                    "an existing file": (tmp_path / "faces", f"{tmp_path / 'faces'} exists and is not a "
                                                             "folder")}[kind]
    monkeypatch.setattr(OnnxGenerator, "run", never_generate)
    with pytest.raises(SystemExit) as info:
        main(["sample", str(model_dir), "-n", "2000", "-o", str(out)])
    err = capsys.readouterr().err
    assert info.value.code == 2 and err.count("\n") == 1
    assert err.startswith(f"kyara sample: argument -o/--out: {message}")


def test_generate_replaces_its_own_pngs_in_an_existing_folder(model_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "faces"
    out.mkdir()
    (out / "seed1_000.png").write_bytes(b"stale")
    (out / "mine.txt").write_text("kept")
    assert main(["sample", str(model_dir), "-n", "2", "--seed", "1", "-o", str(out)]) == 0
    assert Image.open(out / "seed1_000.png").size == (32, 32) and (out / "mine.txt").read_text() == "kept"


@pytest.mark.parametrize("name", ["../outside.onnx", "ABSOLUTE", "sub/../../outside.onnx", "", 3])
def test_manifest_file_must_be_a_plain_name(model_dir: Path, tmp_path: Path, name: object) -> None:
    outside = tmp_path / "outside.onnx"
    outside.write_bytes((model_dir / "model.onnx").read_bytes())   # a real model a traversal would load
    folder = tmp_path / "model"
    folder.mkdir()
    name = str(outside) if name == "ABSOLUTE" else name
    (folder / "manifest.json").write_text(json.dumps({**manifest_of(model_dir), "file": name}))
    with pytest.raises(ValueError) as info:
        OnnxGenerator(folder)
    message = str(info.value)
    assert message.startswith(f"{folder / 'manifest.json'}: ") and repr(name) in message and "\n" not in message


def test_variant_names_must_be_plain_names(model_dir: Path) -> None:
    manifest = without_hashes(manifest_of(model_dir))
    manifest["variants"][0]["file"] = "../model.onnx"
    with pytest.raises(ValueError, match="'../model.onnx'"):
        with_hashes(manifest, model_dir)
