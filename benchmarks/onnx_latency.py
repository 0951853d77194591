"""File size and onnxruntime CPU latency of each variant of an exported model (fp32, int8, compact).

    python benchmarks/onnx_latency.py models/default [--threads 1] [--runs 20]

Prints one `name: value unit` per line. Latency is the median wall time of one `session.run` for a batch
of 1 and of 16 faces drawn from the priors, after warm-up runs, each variant opened as `export.runtime` opens
it (with its `session_config`). A variant with a `session_config` is also timed without it (`.no_config`), to
show what the config buys. A measurement, not a test: CI never asserts on it.
"""
from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import onnxruntime as ort

from export.manifest import MANIFEST_FILE
from export.quantize import generator_inputs
from export.runtime import open_session


def latency_ms(session: ort.InferenceSession, inputs: dict, runs: int) -> float:
    for _ in range(3):
        session.run(["rgba"], inputs)
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        session.run(["rgba"], inputs)
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model_dir", help="a folder written by `kyara export`")
    parser.add_argument("--threads", type=int, default=0, help="onnxruntime intra-op threads (0: its default)")
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()

    folder = Path(args.model_dir)
    manifest = json.loads((folder / MANIFEST_FILE).read_text())
    name = manifest["name"]
    print(f"{name}.resolution: {manifest['resolution']} px")
    for variant in manifest["variants"]:
        prefix = f"{name}.{variant['precision']}"
        print(f"{prefix}.size: {variant['bytes'] / 1e6:.3f} MB")
        if "psnr_db_vs_fp32" in variant:
            print(f"{prefix}.psnr_vs_fp32: {variant['psnr_db_vs_fp32']} dB")
        configs = {"": variant.get("session_config", {})}
        if configs[""]:
            configs[".no_config"] = {}
        sessions = {k: open_session(folder / variant["file"], args.threads, c) for k, c in configs.items()}
        for batch in (1, 16):
            for suffix, session in sessions.items():       # side by side, so that the machine's noise hits both
                ms = latency_ms(session, generator_inputs(manifest, batch, seed=0), args.runs)
                print(f"{prefix}{suffix}.latency_batch{batch}: {ms:.1f} ms")


if __name__ == "__main__":
    main()
