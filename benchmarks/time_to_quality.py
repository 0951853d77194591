"""Quality against training time: realness and face rate of a run's checkpoints, plotted over wall-clock hours.

    python benchmarks/time_to_quality.py --data ~/kyara-runs/data/getchu64 \
        --run old=~/kyara-runs/ab-old --run new=~/kyara-runs/ab-new --every 500 -o docs/time_to_quality.png

For each run, every checkpoint whose step is a multiple of --every is scored once: realness (the fixed
protocol of metrics/realness.py, against the validation split), shape realness (the same on faces shrunk
to 32 px) and the face rate of the same held-out generated faces. Scores are appended to `realness.jsonl`,
`shape_realness.jsonl` and `face_rate.jsonl` in the run directory (one JSONL per metric), so a re-run only
scores the checkpoints that lack a realness or shape-realness row. A checkpoint's time is the run's own
`wall_s` at that step in metrics.jsonl: runs compare fairly only when they ran side by side under the
same load. Prints `name: value unit` lines; never used as an assertion.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from common.packed import PackedSet
from training.checkpoint import list_checkpoints, load_generator, step_of
from metrics.curves import panel, stack
from export.adapters import Source, torch_source
from metrics.base import matched_labels
from metrics.face_rate import face_rate
from training.grid import save_png
from metrics.realness import Protocol, judges, real_faces, real_figure, realness

SEED = 0


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.is_file() else []


def score_run(name: str, run: Path, data: PackedSet, every: int, protocol: Protocol) -> list[dict]:
    """Score the run's checkpoints that are not scored yet; return all scores, oldest first."""
    real = real_faces(data, "val", protocol)
    wall = {r["step"]: r["wall_s"] for r in read_jsonl(run / "metrics.jsonl") if "wall_s" in r}
    done = set.intersection(*({r["step"] for r in read_jsonl(run / f"{metric}.jsonl")} for metric in judges(protocol)))
    for ckpt in list_checkpoints(run):
        step = step_of(ckpt)
        if step % every or step in done or step not in wall:
            continue
        generator, vocab, priors, cfg = load_generator(ckpt)
        source: Source = torch_source(generator, vocab, priors)
        fake = source.generate(*matched_labels(source, data.vocab, real.labels, SEED + 4))
        fake_train, fake_test = fake[:len(real.train)], fake[len(real.train):]
        base = {"step": step, "wall_s": wall[step], "images_seen": step * cfg.batch_size}
        with open(run / "face_rate.jsonl", "a") as f:
            f.write(json.dumps({**base, "face_rate": face_rate(fake_test)}) + "\n")
        for metric, used in judges(protocol).items():
            score = realness(real.train, real.test, fake_train, fake_test, used)
            with open(run / f"{metric}.jsonl", "a") as f:
                f.write(json.dumps({**base, **{k: v for k, v in score.items() if k != "protocol"}}) + "\n")
            print(f"{name}_step_{step}_{metric}: {score['accuracy']:.3f}")
    rates = {r["step"]: r["face_rate"] for r in read_jsonl(run / "face_rate.jsonl")}
    shapes = {r["step"]: r["accuracy"] for r in read_jsonl(run / "shape_realness.jsonl")}
    # By step, the last row winning: a run stopped between two writes scores that checkpoint again.
    scores = sorted({r["step"]: r for r in read_jsonl(run / "realness.jsonl")}.values(), key=lambda r: r["step"])
    return [{**r, "face_rate": rates.get(r["step"]), "shape_realness": shapes.get(r["step"])} for r in scores]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="packed set whose validation split is the real side")
    parser.add_argument("--run", action="append", required=True, metavar="NAME=RUN_DIR")
    parser.add_argument("--every", type=int, default=500, help="score checkpoints at multiples of this step")
    parser.add_argument("-o", "--out", default="time_to_quality.png")
    args = parser.parse_args()

    data, protocol = PackedSet.open(args.data), Protocol()
    runs = {}
    for spec in args.run:
        name, sep, path = spec.partition("=")
        if not sep or not Path(path).expanduser().is_dir():
            raise SystemExit(f"--run {spec!r}: expected NAME=RUN_DIR with an existing run directory")
        runs[name] = score_run(name, Path(path).expanduser(), data, args.every, protocol)

    real = real_faces(data, "val", protocol)
    real_score = real_figure(real, protocol)
    real_shape = real_figure(real, judges(protocol)["shape_realness"])
    real_rate = face_rate(real.test)
    print(f"real_realness: {real_score['accuracy']:.3f}")
    print(f"real_shape_realness: {real_shape['accuracy']:.3f}")
    print(f"real_face_rate: {real_rate:.3f}")
    for name, scores in runs.items():
        if scores:
            last = scores[-1]
            print(f"{name}_hours: {last['wall_s'] / 3600:.2f} h")
            print(f"{name}_images_seen: {last['images_seen']}")
            for key, value in (("realness", last["accuracy"]), ("shape_realness", last["shape_realness"]),
                               ("face_rate", last["face_rate"])):
                print(f"{name}_{key}: " + ("n/a" if value is None else f"{value:.3f}"))

    hours = [r["wall_s"] / 3600 for scores in runs.values() for r in scores] or [0.0, 1.0]

    def flat(value: float) -> list[tuple[float, float]]:
        """The real faces' level, drawn across the whole time axis."""
        return [(min(hours), value), (max(hours), value)]

    realness_series = {name: [(r["wall_s"] / 3600, r["accuracy"]) for r in scores] for name, scores in runs.items()}
    rate_series = {name: [(r["wall_s"] / 3600, r["face_rate"]) for r in scores] for name, scores in runs.items()}
    shape_series = {name: [(r["wall_s"] / 3600, r["shape_realness"]) for r in scores if r["shape_realness"] is not None]
                    for name, scores in runs.items()}
    panels = [
        panel("realness: held-out accuracy of the real-vs-generated CNN (0.5 = indistinguishable; lower is better)",
              {**realness_series, "real faces": flat(real_score["accuracy"])}, x_label="hours"),
        panel("shape realness: the same on faces shrunk to 32 px (grain averaged away; lower is better)",
              {**shape_series, "real faces": flat(real_shape["accuracy"])}, x_label="hours"),
        panel("face rate (lbpcascade, higher is better)", {**rate_series, "real faces": flat(real_rate)},
              x_label="hours"),
    ]
    print(save_png(stack(panels), args.out))


if __name__ == "__main__":
    main()
