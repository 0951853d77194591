"""`kyara export`: a checkpoint -> model folder with model.onnx (fp32), model.int8.onnx, model.compact.onnx
(small weights, fp32 arithmetic: the page's default) and manifest.json.

Every file is written into a hidden staging folder and moved into the model folder when all are complete
(`common.files.staged_files`); manifest.json goes last, so a reader that finds a manifest also finds the files it
names (with the hashes it lists), and an export that fails (a full disk) leaves the folder as it was.
"""
from __future__ import annotations

import json
from pathlib import Path

import onnx

from common.files import read_json, staged_files
from export.fold import fold_truncation
from export.graph import export_onnx
from export.manifest import MANIFEST_FILE, build_manifest, embed_manifest, with_hashes
from export.quantize import COMPACT_SCHEME, COMPACT_SESSION_CONFIG, SCHEME, psnr, quantize_compact, quantize_int8
from training.checkpoint import load_generator, resolve_checkpoint, total_steps

FILES = {"fp32": "model.onnx", "int8": "model.int8.onnx", "compact": "model.compact.onnx"}
EVAL_FILE = "eval.json"


def training_info(checkpoint: Path, config_name: str, data: str | None, eval_path: str | Path | None) -> dict:
    """Where the weights come from: data, steps (all of them, `--init` legs included), config, and the headline
    figures (the top-level scalars) of an eval.json made by `kyara eval`: the one given, or one beside the
    checkpoint or in its run directory."""
    if data and (Path(data) / "meta.json").is_file():   # a packed set: record what it was packed from
        meta = read_json(Path(data) / "meta.json")
        data = f"{meta.get('source')} ({meta.get('count')} images, {meta.get('resolution')} px)"
    if eval_path is None:
        found = [p for p in (checkpoint / EVAL_FILE, checkpoint.parent.parent / EVAL_FILE) if p.is_file()]
        eval_path = found[0] if found else None
    figures = None
    if eval_path is not None:
        report = read_json(eval_path)
        figures = {k: v for k, v in report.items() if v is None or isinstance(v, (int, float, str, bool))}
    return {"data": data, "steps": total_steps(checkpoint), "config": config_name, "checkpoint": checkpoint.name,
            "eval": figures}


def export_checkpoint(checkpoint: str | Path, out_dir: str | Path, default: str = "compact",
                      name: str | None = None, version: str | None = None, data: str | None = None,
                      eval_path: str | Path | None = None, calibration_samples: int = 128,
                      truncation: float = 1.0) -> dict:
    """Export a checkpoint's EMA generator, its noise truncated by `truncation` inside the model; returns the
    full manifest (also written as manifest.json)."""
    if default not in FILES:
        raise ValueError(f"--default must be one of {', '.join(FILES)}, got {default!r}")
    ckpt = resolve_checkpoint(checkpoint)
    generator, vocab, priors, cfg = load_generator(ckpt)
    generator = fold_truncation(generator, truncation)   # before anything is written: a bad value fails at once
    info = training_info(ckpt, cfg.name, data, eval_path)   # --data's and --eval's files are read before too
    out = Path(out_dir)
    with staged_files(out, last=(MANIFEST_FILE,)) as stage:
        tmp = {precision: stage / file for precision, file in FILES.items()}
        onnx.save(export_onnx(generator), str(tmp["fp32"]))
        manifest = build_manifest(
            name=name or f"kyara-{cfg.name}", version=version or f"step{total_steps(ckpt)}", vocab=vocab,
            priors=priors, resolution=cfg.model.resolution, noise_dim=cfg.model.noise_dim, default_file=FILES[default],
            variants=[{"file": file, "precision": precision,
                       **({"session_config": dict(COMPACT_SESSION_CONFIG)} if precision == "compact" else {})}
                      for precision, file in FILES.items()],
            training=info, truncation=truncation,
        )
        quantize_int8(tmp["fp32"], tmp["int8"], manifest, samples=calibration_samples)
        quantize_compact(tmp["fp32"], tmp["compact"])
        for precision, scheme in (("int8", SCHEME), ("compact", COMPACT_SCHEME)):
            variant = next(v for v in manifest["variants"] if v["precision"] == precision)
            variant.update(quantization=scheme,
                           psnr_db_vs_fp32=round(psnr(tmp["fp32"], tmp[precision], manifest), 2))

        for path in tmp.values():
            model = onnx.load(str(path))
            embed_manifest(model, manifest)
            onnx.save(model, str(path))
        full = with_hashes(manifest, stage)
        (stage / MANIFEST_FILE).write_text(json.dumps(full, indent=2) + "\n", encoding="utf-8")
    return full
