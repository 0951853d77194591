"""The one renderer of an evaluation: eval.json's headline numbers, the terminal summary and report.md, each
looping over the registered metrics, so that a metric renders itself wherever it is listed.

What is not any one metric's stays here: the report's introduction, the sample and blind sheets, and the list
of which figure to trust for what.
"""
from __future__ import annotations

from metrics import registry


def headline(figures: dict) -> dict[str, float | None]:
    """One number per figure, for the generated faces: flat, so that a manifest or a table can quote it. Also
    reads evaluations made before a metric existed (its numbers are None there), as the curves and export do."""
    numbers: dict[str, float | None] = {"score": figures["score"]}
    for metric in registry.METRICS:
        numbers.update(metric.headline(figures))
    return numbers


def summary(result: dict) -> str:
    """A few lines for the terminal."""
    figures = result["figures"]
    psi = result.get("truncation", 1.0)     # absent from evaluations made before it existed
    return "\n".join([
        *([f"truncation    {psi:g} (every generated face below)"] if psi != 1.0 else []),
        *(line for metric in registry.METRICS if metric.name in figures for line in metric.summary(figures)),
    ])


def _sections(figures: dict) -> list[str]:
    """report.md's figure sections, one per metric in the registry's order; neighbours with one title share
    its heading (KID and FID)."""
    lines: list[str] = []
    title = None
    for metric in registry.METRICS:
        if metric.name not in figures:
            continue
        if metric.title != title:
            lines += [f"## {metric.title}", ""]
            title = metric.title
        lines += [*metric.markdown(figures), ""]
    return lines


def markdown(result: dict) -> str:
    """report.md: one section per figure, the real counterpart beside each, then the sheets."""
    figures, sheets = result["figures"], result["sheets"]
    psi = result.get("truncation", 1.0)     # absent from evaluations made before it existed
    truncation = "" if psi == 1.0 else f"; every generated face with its noise truncated by {psi:g}"
    return "\n".join([
        "# Evaluation", "",
        f"Model `{result['model']}` against the `{result['split']}` faces of `{result['data']}` "
        f"(seed {result['seed']}, {figures['images']['generated']} generated faces for the distribution figures, "
        f"{figures['images']['per_tag']} per colour for fidelity; {result['seconds']} s)"
        f"{truncation}.", "",
        *_sections(figures),
        "## Samples", "",
        "One fixed noise vector; rows, then columns: "
        + "; ".join(f"{name} ({', '.join(tags)})" for name, tags in sheets["axes"].items()) + ".", "",
        f"![colour sheet]({sheets['tags']})", "",
        "Tags drawn from the data's priors:", "",
        f"![samples]({sheets['samples']})", "",
        "## Blind sheets", "",
        f"{len(sheets['blind'])} sheets of generated faces shuffled with as many real validation faces, 168 px each, "
        f"numbered: {', '.join(f'[{b}]({b})' for b in sheets['blind'])}. Count good / flawed / broken before "
        f"opening the key, [{sheets['blind_key']}]({sheets['blind_key']}).", "",
        "## Which figure to trust for what", "",
        "- Does it look made by a person: your own count on the blind sheets first. Realness (texture) and "
        "shape realness (eyes, outline: melted faces) test the whole set against real faces, variety included: "
        "they rank a truncated model below the same model untruncated although a person counts far fewer broken "
        "faces in it, and near 0.5 they stop telling checkpoints apart. Compare realness only at one truncation.",
        "- Does it draw what was asked: tag fidelity and attribute fidelity (no better than the tagger: compare "
        "with the real columns).",
        "- Mode collapse: diversity.",
        "- What is wrong with the texture (grain or blur): the spectrum, chroma for the coloured speckle; it does "
        "not see the shape of a face.",
        "- Gross failures only: face rate (the detector also accepts blurred and half-formed faces).",
        "- Comparing checkpoints of one run: KID and FID, in this tagger's space only; near the real floor they "
        "stop telling checkpoints apart.", "",
    ])
