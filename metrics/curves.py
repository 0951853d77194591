"""`kyara curves RUN_DIR`: the run's loss curves (and evaluation figures, if any) as one PNG.

Drawn with PIL so that looking at a run on a headless box needs no plotting library.
"""
from __future__ import annotations

import json
from pathlib import Path

from PIL import Image, ImageDraw

from training.grid import save_png

COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd")
W, H, PAD = 640, 260, 44


def _smooth(values: list[float], window: int) -> list[float]:
    out, total = [], 0.0
    for i, v in enumerate(values):
        total += v - (values[i - window] if i >= window else 0.0)
        out.append(total / min(i + 1, window))
    return out


def _tick(x: float) -> str:
    """Steps as 38,000 rather than 3.8e+04; fractions (the hours of time_to_quality) to three digits."""
    return f"{x:,.0f}" if float(x).is_integer() else f"{x:.3g}"


def panel(title: str, series: dict[str, list[tuple[float, float]]], x_label: str = "step") -> Image.Image:
    """One chart: each series a polyline over a shared x axis, with its min/max on the y axis."""
    im = Image.new("RGB", (W, H), "white")
    draw = ImageDraw.Draw(im)
    points = [p for s in series.values() for p in s]
    draw.text((PAD, 6), title, fill="black")
    if not points:
        draw.text((PAD, H // 2), "no data", fill="gray")
        return im
    x0, x1 = min(p[0] for p in points), max(p[0] for p in points)
    y0, y1 = min(p[1] for p in points), max(p[1] for p in points)
    x1, y1 = (x1 if x1 > x0 else x0 + 1), (y1 if y1 > y0 else y0 + 1e-9)
    draw.rectangle([PAD, 24, W - 10, H - 24], outline="#999999")
    draw.text((4, 24), f"{y1:.3g}", fill="gray")
    draw.text((4, H - 34), f"{y0:.3g}", fill="gray")
    draw.text((PAD, H - 20), f"{x_label} {_tick(x0)}", fill="gray")
    draw.text((W - 110, H - 20), f"{x_label} {_tick(x1)}", fill="gray")
    for i, (name, pts) in enumerate(series.items()):
        colour = COLOURS[i % len(COLOURS)]
        xy = [(PAD + (x - x0) / (x1 - x0) * (W - 10 - PAD), H - 24 - (y - y0) / (y1 - y0) * (H - 48))
              for x, y in pts]
        if len(xy) > 1:
            draw.line(xy, fill=colour, width=2)
        else:
            draw.ellipse([xy[0][0] - 3, xy[0][1] - 3, xy[0][0] + 3, xy[0][1] + 3], fill=colour)
        draw.text((PAD + 8 + 110 * i, 30), name, fill=colour)
    return im


def plot_curves(run_dir: str | Path, out: str | Path, smooth: int = 20, until: int | None = None) -> Path:
    """Loss panels (smoothed over `smooth` log lines) and, when the run was evaluated, an eval panel.

    `until` drops the log after that step: a shipped checkpoint's curves end where it was taken, while the
    run itself goes on."""
    path = Path(run_dir) / "metrics.jsonl"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no metrics log here (is {run_dir} a run directory?)")
    records = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    if until is not None:
        records = [r for r in records if r["step"] <= until]
    losses = [r for r in records if "loss_d" in r]
    evals = [r for r in records if "eval" in r]
    panels = []
    groups = [("d_adv", "g_adv", "gp"), ("d_tag_real", "g_tag_fake")]
    if any("g_teacher" in r for r in losses):          # a distillation run: how close G draws to its teacher
        groups.append(("g_teacher",))
    for group in groups:
        series = {}
        for key in group:
            steps = [r["step"] for r in losses if key in r]
            values = _smooth([r[key] for r in losses if key in r], smooth)
            series[key] = list(zip(steps, values))
        panels.append(panel(f"losses ({', '.join(group)}), moving average of {smooth}", series))
    if evals:
        from metrics.report import headline
        figures = [(r["step"], headline(r["eval"])) for r in evals]
        # KID lives on another scale (~1e-3) than the shares, so it gets its own panel.
        panels.append(panel("evaluation (validation split): shares",
                             {k: [(s, h[k]) for s, h in figures] for k in ("tag_fidelity", "face_rate")}))
        panels.append(panel("evaluation (validation split): KID x 1000",
                             {"kid": [(s, h["kid"] * 1000) for s, h in figures]}))
        spectral = {key: [(s, h[key]) for s, h in figures if h[key] is not None]
                    for key in ("spectral_distance", "chroma_distance")}
        if spectral["spectral_distance"]:
            panels.append(panel("evaluation: spectrum distance, luminance and chroma (mean |log2| power ratio to "
                                "real; 0 = real)", {k: v for k, v in spectral.items() if v}))
        scored = {key: [(s, h[key]) for s, h in figures if h.get(key) is not None]
                  for key in ("realness", "shape_realness")}
        if scored["realness"]:
            panels.append(panel("evaluation: realness and shape realness (real-vs-generated CNN accuracy; "
                                "0.5 = indistinguishable)", {k: v for k, v in scored.items() if v}))
    return save_png(stack(panels), out)


def stack(panels: list[Image.Image]) -> Image.Image:
    """Panels one above the other, as one picture."""
    sheet = Image.new("RGB", (W, H * len(panels)), "white")
    for i, one in enumerate(panels):
        sheet.paste(one, (0, H * i))
    return sheet
