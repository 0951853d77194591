"""Features of every called face (judge_faces.py's npz) for judge_fit.py: the tagger-v5 trunks (pooled; 2 x 2
maps; the maps' mirror asymmetry), the face detector's yes / no, and the trunk features and adversarial score of
the main line's frozen discriminators at steps 14,500 and 27,500."""
import json
from pathlib import Path
import numpy as np, torch
from safetensors.torch import load_file
from tagger.model import load_tagger
from training.config import TrainConfig
from training.evaluate import face_rate
from training.models import Discriminator

R = Path.home() / "kyara-runs"
faces = np.load(R / "judge/called_faces.npz")["faces"]
out = {}
tagger = load_tagger(R / "tagger-v5"); net = tagger.net
pool = torch.nn.AdaptiveAvgPool2d(2)


def maps(x):
    return torch.cat([pool(net.backbone.blocks(x)), pool(net.attribute_backbone.blocks(x))], 1)


with torch.no_grad():
    out["trunk1"] = tagger.features(faces)
    out["both"] = tagger._batched(faces, lambda x: torch.cat([net.backbone(x), net.attribute_backbone(x)], 1), 256)
    out["spatial"] = tagger._batched(faces, lambda x: maps(x).flatten(1), 256)
    out["asym"] = tagger._batched(faces, lambda x: (maps(x) - maps(x.flip(-1)).flip(-1)).abs().flatten(1), 256)
out["det"] = np.array([face_rate(faces[i:i + 1]) for i in range(len(faces))])
for name, ck in (("d14500", R / "judge/models/s14500"), ("d27500", R / "teacher-s27500")):
    cfg = TrainConfig.from_json(json.loads((ck / "config.json").read_text()))
    n_tags = len(json.loads((ck / "vocab.json").read_text())["tags"])
    D = Discriminator(cfg.model, n_tags)
    D.load_state_dict({k: v.float() for k, v in load_file(str(ck / "D.safetensors")).items()})
    x = torch.from_numpy(faces).permute(0, 3, 1, 2).float().div(127.5).sub(1)
    with torch.no_grad():
        h = torch.cat([D.eval().features(x[i:i + 128]).flatten(1) for i in range(0, len(x), 128)])
        out[name], out[name + "_adv"] = h.numpy(), D.adv_head(h).squeeze(1).numpy()
np.savez(R / "judge/features.npz", **out)
