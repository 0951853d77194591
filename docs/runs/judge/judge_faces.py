"""Re-draw every face I have called on committed blind sheets (docs/runs/blind), with my call, into one npz.

Each sheet set is re-made from its models and seed exactly as `kyara blind` / `kyara eval` made it; the
key's kinds are checked number by number against the committed key, so the calls line up with the faces."""
import json, sys
from pathlib import Path
import numpy as np
from common.packed import PackedSet
from training.blind import read_calls
from training.compare import _entries
from training.evaluate import draw, open_source, truncated, matched_labels, fitted_protocol
from training.realness import real_faces

R = Path.home() / "kyara-runs"
DATA = R / "data/getchu64-v4"
V2, S14500, S27500, V3 = R / "judge/models/v2", R / "judge/models/s14500", R / "teacher-s27500", Path("models/default")
BLIND = Path("docs/runs/blind")
# name: (models, truncations, seed) for `kyara blind`; or ("eval", model, truncation) for an eval's sheets
SETS = {
    "ship-s27500-psi07-vs-v2": ([V3, V2], [1.0], 505),
    "arms-s27500-psi07": ([S27500], [0.7], 404),          # the annealed arm's faces are gone: its half is left out
    "psi06-vs-07-s27500": ([S27500], [0.6, 0.7], 606),
    "psi05-vs-07": ([S14500], [0.5, 0.7], 202),
    "psi07-vs-10": ([S14500], [0.7, 1.0], 101),
    "eval-s27500-psi07": ("eval", S27500, 0.7),
    "eval-s14500-psi07": ("eval", S14500, 0.7),
}
MODEL = {str(V3): "v3", str(V2): "v2", str(S14500): "s14500", str(S27500): "s27500"}


def blind_faces(models, truncs, seed, n=60):
    entries = _entries(models, truncs)
    faces = [source.generate(*draw(source, n, seed + k)) for k, (_, source) in enumerate(entries)]
    names = [f"{MODEL[str(m)]}@{t:g}" for m in models for t in truncs]
    if len(entries) == 1:      # an A/B whose other arm is gone: keep its slots as None
        faces.append(None); names.append("gone")
    return faces, names, seed


def eval_faces(model, psi, seed=0, n=60):
    packed = PackedSet.open(DATA)
    source = truncated(open_source(model), psi)
    protocol = fitted_protocol(len(packed.indices("val")))
    real = real_faces(packed, "val", protocol)
    fake = source.generate(*matched_labels(source, packed.vocab, real.labels, seed + 4))[len(real.train):][:n]
    return [fake, real.test[:n]], [f"{MODEL[str(model)]}@{psi:g}", "real"], seed


out = {"faces": [], "calls": [], "set": [], "kind": []}
for name, spec in SETS.items():
    faces, names, seed = eval_faces(*spec[1:]) if spec[0] == "eval" else blind_faces(*spec)
    n = 60
    order = np.random.default_rng(seed).permutation(2 * n)
    key = json.loads((BLIND / f"{name}.key.json").read_text())["faces"]
    calls = read_calls(BLIND / f"{name}.calls.txt", 2 * n)
    first_kind = [f["kind"] for f in key if f["number"] == 1 + int(np.where(order < n)[0][0])][0]
    for f in key:
        i = order[f["number"] - 1]
        which, j = divmod(int(i), n)
        assert (f["kind"] == first_kind) == (which == 0), (name, f)
        if faces[which] is None or f["number"] not in calls:
            continue
        out["faces"].append(faces[which][j]); out["calls"].append(calls[f["number"]])
        out["set"].append(name); out["kind"].append(names[which])
    print(name, names, "ok", file=sys.stderr)
np.savez_compressed(R / "judge/called_faces.npz", faces=np.stack(out["faces"]), calls=np.array(out["calls"]),
                    set=np.array(out["set"]), kind=np.array(out["kind"]))
print(len(out["faces"]), "faces")
