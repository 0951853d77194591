"""Does a simple judge on fixed features agree with my calls? Leave-one-sheet-set-out, L2 chosen by an inner
leave-one-set-out. Targets: broken vs not, good vs not. Prints pooled held-out AUCs and, per (set, kind), my
share beside the judge's mean probability. Run judge_faces.py and judge_features.py first."""
from pathlib import Path
import numpy as np
import torch

R = Path.home() / "kyara-runs"
d = np.load(R / "judge/called_faces.npz")
calls, sets, kinds = d["calls"], d["set"], d["kind"]
f = np.load(R / "judge/features.npz")
det = f["det"]
FEATURES = {"tagger first trunk": f["trunk1"], "tagger trunks": f["both"], "tagger 2 x 2 maps": f["spatial"],
            "tagger maps + asymmetry": np.concatenate([f["spatial"], f["asym"]], 1),
            "tagger trunks + asymmetry": np.concatenate([f["both"], f["asym"]], 1),
            "D 14,500": f["d14500"], "D 27,500": f["d27500"],
            "tagger trunks + D 14,500": np.concatenate([f["both"], f["d14500"]], 1)}
ADV = {"d14500": f["d14500_adv"], "d27500": f["d27500_adv"]}

def auc(score, y):
    order = np.argsort(score); r = np.empty(len(score)); r[order] = np.arange(1, len(score) + 1)
    pos = y.sum(); return (r[y == 1].sum() - pos * (pos + 1) / 2) / (pos * (len(y) - pos))


def fit(x, y, l2):
    x = torch.tensor(x, dtype=torch.float64); y = torch.tensor(y, dtype=torch.float64)
    w = torch.zeros(x.shape[1], dtype=torch.float64, requires_grad=True); b = torch.zeros(1, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([w, b], max_iter=200, line_search_fn="strong_wolfe")
    def closure():
        opt.zero_grad()
        loss = torch.nn.functional.binary_cross_entropy_with_logits(x @ w + b, y) + l2 * (w @ w)
        loss.backward(); return loss
    opt.step(closure)
    return w.detach().numpy(), b.detach().numpy()


def predict(xtr, ytr, xte, l2):
    mu, sd = xtr.mean(0), xtr.std(0) + 1e-6
    w, b = fit((xtr - mu) / sd, ytr, l2)
    return 1 / (1 + np.exp(-(((xte - mu) / sd) @ w + b)))


L2S = [1e-3, 1e-2, 1e-1, 1.0]
groups = np.unique(sets)


def held_out(x, y):
    """Leave one set out; L2 chosen by an inner leave-one-set-out on the rest."""
    p = np.full(len(y), np.nan)
    for g in groups:
        te, tr = sets == g, sets != g
        inner = {}
        for l2 in L2S:
            q = np.full(len(y), np.nan)
            for h in groups:
                if h == g: continue
                ite, itr = tr & (sets == h), tr & (sets != h)
                q[ite] = predict(x[itr], y[itr], x[ite], l2)
            inner[l2] = auc(q[tr], y[tr])
        best = max(inner, key=inner.get)
        p[te] = predict(x[tr], y[tr], x[te], best)
    return p


gen = kinds != "real"
for target in ("broken", "good"):
    y = (calls == target).astype(float)
    print(f"\n== {target} vs not ({int(y[gen].sum())} of {gen.sum()} generated, {int(y[~gen].sum())} of {(~gen).sum()} real)")
    print(f"  face detector (no face -> {target}): AUC generated {auc((1 - det if target == 'broken' else det)[gen] + 1e-9 * np.random.rand(gen.sum()), y[gen]):.3f}")
    for nm, adv in ADV.items():
        print(f"  {nm} adversarial score alone: AUC generated {auc((-adv if target == 'broken' else adv)[gen], y[gen]):.3f}")
    for name, x in FEATURES.items():
        p = held_out(x, y)
        print(f"  {name}: held-out AUC all {auc(p, y):.3f}, generated only {auc(p[gen], y[gen]):.3f}")
        if True:
            rows = []
            for s in groups:
                for k in np.unique(kinds[sets == s]):
                    m = (sets == s) & (kinds == k)
                    rows.append((s, k, y[m].mean(), p[m].mean(), m.sum()))
            for s, k, mine, judged, n in rows:
                print(f"    {s:28s} {k:12s} n={n:3d} mine {mine:.2f} judge {judged:.2f}")
            a = np.array([r[2] for r in rows]); b = np.array([r[3] for r in rows])
            ra, rb = np.argsort(np.argsort(a)), np.argsort(np.argsort(b))
            print(f"    Spearman over {len(rows)} (set, kind) rows: {np.corrcoef(ra, rb)[0, 1]:.3f}, Pearson {np.corrcoef(a, b)[0, 1]:.3f}")
