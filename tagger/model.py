"""The tagger: an Illustration2Vec-style multi-label CNN, and `load_tagger` for everything that uses one.

A backbone (`tagger.backbones`: Kyara's plain full-resolution CNN, or a timm model created with
`pretrained=False`: nothing is downloaded; a local weights file may be given) pools an image to a feature
vector, and one linear layer maps it to one logit per vocabulary tag. A tagger may have a second trunk of its
own for the tags outside the exclusive groups (`attribute_backbone`): hair length and expression have a few
thousand labels against the colours' tens of thousands, and in a shared trunk the colours shape the
features (a plain CNN trained on the annotated faces alone reads short hair at F1 0.80 where the shared
trunk stays at 0.72; docs/experiments/2026-12-01-tagger-v5.md). A third trunk may read chosen tags (smile) from
the mouth alone (`mouth_backbone`, `mouth_tags`): a box around the mouth, enlarged, where a whole 64 px face
leaves the mouth a few pixels that the trunk must first find (a probe of the same network on the same faces
ranks smile at average precision 0.78 from the box, 0.70 from the whole face;
docs/experiments/2026-12-02-tagger-v6-mouth.md). Groups decide how logits become
probabilities: an exclusive group (hair colour, eye colour) is a softmax over its tags, because a face has
exactly one hair colour; every other tag is an independent sigmoid.

The saved tagger is two files side by side: `tagger.safetensors` (weights) and `tagger.json` (vocabulary,
backbone name, input size, normalisation, per-tag thresholds). The shipped one lives in `tagger/weights/`.
"""
from __future__ import annotations

import json
import pickle
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from torch import nn

from common.files import atomic_path, write_text_atomic
from common.vocab import Vocabulary
from tagger.backbones import create_backbone

# The plain full-resolution CNN (`tagger.backbones`): the small timm backbones we tried (MobileNetV4, also on
# inputs upsampled to 128 px) learn colours and hair length at 64 px but not expression.
DEFAULT_BACKBONE = "kyara_plain_32"
SHIPPED = Path(__file__).parent / "weights"
WEIGHTS, CONFIG = "tagger.safetensors", "tagger.json"
# Where the mouth trunk looks, as fractions of the input (top, bottom, left, right), and how much it enlarges
# that box: rows 32-56 and columns 14-50 of a 64 px Getchu face, twice as large.
MOUTH_BOX = (0.5, 0.875, 0.22, 0.78)
MOUTH_SCALE = 2


@dataclass
class TaggerConfig:
    """Everything besides the weights that is needed to rebuild and run a tagger."""

    vocabulary: dict
    backbone: str = DEFAULT_BACKBONE
    input_size: int = 64
    mean: tuple[float, float, float] = (0.5, 0.5, 0.5)
    std: tuple[float, float, float] = (0.5, 0.5, 0.5)
    # A second trunk for the non-exclusive tags ("" for none): their logits come from it and its own head.
    attribute_backbone: str = ""
    # A third trunk for `mouth_tags` ("" for none), on the box `mouth_box` of the input enlarged `mouth_scale`
    # times: their logits come from it and its own head.
    mouth_backbone: str = ""
    mouth_tags: list[str] = field(default_factory=list)
    mouth_box: tuple[float, float, float, float] = MOUTH_BOX
    mouth_scale: int = MOUTH_SCALE
    # Decision thresholds of non-exclusive tags (exclusive groups take their argmax instead).
    thresholds: dict[str, float] = field(default_factory=dict)
    # Per non-exclusive tag, [lo, hi]: between them the tagger is unsure (`tagger.report.confident_bounds`).
    bounds: dict[str, list[float]] = field(default_factory=dict)
    training: dict = field(default_factory=dict)

    @property
    def vocab(self) -> Vocabulary:
        return Vocabulary.from_json(self.vocabulary)


def attribute_columns(vocab: Vocabulary) -> list[int]:
    """The columns of the tags outside the exclusive groups: those a second trunk reads."""
    return [vocab.index(t) for t in vocab.attribute_tags]


def mouth_columns(vocab: Vocabulary, tags: Sequence[str]) -> list[int]:
    """The columns a mouth trunk reads: tags of the vocabulary outside the exclusive groups."""
    for tag in tags:
        if tag not in vocab.tags:
            raise ValueError(f"mouth tag {tag!r} is not in the vocabulary ({', '.join(vocab.tags)})")
        if vocab.group_of(tag).exclusive:
            raise ValueError(f"mouth tag {tag!r} is in the exclusive group {vocab.group_of(tag).name!r}; a mouth "
                             "trunk reads only tags outside the colour groups")
    return [vocab.index(t) for t in tags]


def mouth_view(x: torch.Tensor, box: Sequence[float], scale: int) -> torch.Tensor:
    """The box of the images (fractions of their size) that a mouth trunk sees, enlarged `scale` times."""
    h, w = x.shape[-2:]
    top, bottom, left, right = round(box[0] * h), round(box[1] * h), round(box[2] * w), round(box[3] * w)
    x = x[..., top:bottom, left:right]
    return F.interpolate(x, scale_factor=scale, mode="bilinear", align_corners=False) if scale != 1 else x


def _pooled_width(backbone: nn.Module) -> int:
    # timm's pooled width: `head_hidden_size` when the backbone ends in a pre-logits layer (MobileNetV4).
    return getattr(backbone, "head_hidden_size", None) or backbone.num_features


class TaggerNet(nn.Module):
    """Backbone -> pooled features -> one logit per tag; with `attribute_backbone`, the logits of
    `attribute_columns` come from a second trunk and head instead (the first head's rows for them go unused,
    so a single-trunk tagger's weights load into the first trunk as they are); with `mouth_backbone`, those of
    `mouth_columns` come from a third trunk that sees only `mouth_view` of the image."""

    def __init__(self, backbone: str, n_tags: int, backbone_weights: str | Path | None = None,
                 attribute_backbone: str = "", attribute_columns: Sequence[int] = (), mouth_backbone: str = "",
                 mouth_columns: Sequence[int] = (), mouth_box: Sequence[float] = MOUTH_BOX,
                 mouth_scale: int = MOUTH_SCALE):
        super().__init__()
        self.backbone_name, self.attribute_backbone_name = backbone, attribute_backbone
        self.mouth_backbone_name, self.mouth_box, self.mouth_scale = mouth_backbone, tuple(mouth_box), mouth_scale
        self.backbone = create_backbone(backbone)
        if backbone_weights is not None:
            load_backbone_weights(self.backbone, backbone_weights)
        self.head = nn.Linear(_pooled_width(self.backbone), n_tags)
        self.attribute_backbone = create_backbone(attribute_backbone) if attribute_backbone else None
        if self.attribute_backbone is not None:
            if not attribute_columns:
                raise ValueError(f"attribute backbone {attribute_backbone!r}: the vocabulary has no tags outside "
                                 "the exclusive groups for it to read")
            self.register_buffer("attribute_columns", torch.tensor(list(attribute_columns)), persistent=False)
            self.attribute_head = nn.Linear(_pooled_width(self.attribute_backbone), len(attribute_columns))
        self.mouth_backbone = create_backbone(mouth_backbone) if mouth_backbone else None
        if self.mouth_backbone is not None:
            if not mouth_columns:
                raise ValueError(f"mouth backbone {mouth_backbone!r}: no tags given for it to read")
            self.register_buffer("mouth_columns", torch.tensor(list(mouth_columns)), persistent=False)
            self.mouth_head = nn.Linear(_pooled_width(self.mouth_backbone), len(mouth_columns))

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The first trunk's pooled features (KID/FID in tagger space are measured on them)."""
        return self.backbone(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits = self.head(self.features(x))
        if self.attribute_backbone is not None:
            logits = logits.index_copy(1, self.attribute_columns, self.attribute_head(self.attribute_backbone(x)))
        if self.mouth_backbone is not None:
            mouth = self.mouth_backbone(mouth_view(x, self.mouth_box, self.mouth_scale))
            logits = logits.index_copy(1, self.mouth_columns, self.mouth_head(mouth))
        return logits


def load_backbone_weights(backbone: nn.Module, path: str | Path) -> None:
    """Load local backbone weights (safetensors or a torch state dict); a classifier in the file is ignored."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: backbone weights not found")
    state = load_file(str(path)) if path.suffix == ".safetensors" else load_state(path)
    missing, _ = backbone.load_state_dict(state, strict=False)
    if missing:
        raise ValueError(f"{path}: does not fit the backbone, missing {len(missing)} tensors e.g. {missing[0]}")


def load_state(path: str | Path, device: str = "cpu") -> dict:
    """A torch-saved state (weights, optimizer state), refusing pickled code: a .pt file is a pickle, and
    unpickling a stranger's file may run anything, so only tensors and plain containers are accepted."""
    try:
        return torch.load(path, map_location=device, weights_only=True)
    except pickle.UnpicklingError:
        raise ValueError(f"{path}: refused: it holds pickled objects, not only tensors (loading it could run "
                         "code); convert it to safetensors or a plain state dict") from None


def group_columns(vocab: Vocabulary) -> list[tuple[bool, list[int]]]:
    """(exclusive, column indices) per group of the vocabulary."""
    return [(g.exclusive, [vocab.index(t) for t in g.tags]) for g in vocab.groups]


def tagger_loss(logits: torch.Tensor, labels: torch.Tensor, vocab: Vocabulary) -> torch.Tensor:
    """Softmax cross-entropy per exclusive group plus sigmoid BCE per other tag, summed, averaged over images.

    Labels are 1 / 0 / -1 (unknown). An exclusive group counts for an image only when exactly one of its tags
    is 1; unknown non-exclusive tags are masked out. Masked entries contribute no loss and no gradient, so a
    data set labelling only colours and one labelling all 34 tags train with the same code.
    """
    total = logits.new_zeros(())
    for exclusive, cols in group_columns(vocab):
        lg, lb = logits[:, cols].float(), labels[:, cols]
        if exclusive:
            known = (lb == 1).sum(1) == 1
            total = total + F.cross_entropy(lg[known], lb[known].argmax(1), reduction="sum")
        else:
            known = lb >= 0
            bce = F.binary_cross_entropy_with_logits(lg, lb.clamp(min=0).float(), reduction="none")
            total = total + torch.where(known, bce, torch.zeros_like(bce)).sum()
    return total / len(logits)


def probabilities(logits: torch.Tensor, vocab: Vocabulary) -> torch.Tensor:
    """Softmax within exclusive groups, sigmoid elsewhere."""
    probs = torch.empty_like(logits, dtype=torch.float32)
    for exclusive, cols in group_columns(vocab):
        lg = logits[:, cols].float()
        probs[:, cols] = lg.softmax(1) if exclusive else lg.sigmoid()
    return probs


def tags_from_probabilities(probs: np.ndarray, vocab: Vocabulary, thresholds: dict[str, float]) -> list[list[str]]:
    """Each image's tags: the most likely tag of every exclusive group, and the others above their threshold.

    In an at-most-one group (hair length) only the most likely of the tags above their thresholds is kept,
    so a tagging never says "long hair" and "short hair" for one face.
    """
    result = []
    for row in np.asarray(probs):
        tags = []
        for group in vocab.groups:
            cols = [vocab.index(t) for t in group.tags]
            if group.exclusive:
                tags.append(group.tags[int(np.argmax(row[cols]))])
                continue
            above = [(row[c], t) for t, c in zip(group.tags, cols) if row[c] >= thresholds.get(t, 0.5)]
            tags += [max(above)[1]] if group.at_most_one and above else [t for _, t in above]
        result.append([t for t in vocab.tags if t in tags])
    return result


class Tagger:
    """A trained tagger ready for inference on uint8 images (N x H x W x 3, any square size)."""

    def __init__(self, net: TaggerNet, config: TaggerConfig, device: str = "cpu"):
        self.net = net.to(device).eval()
        self.config = config
        self.vocab = config.vocab
        self.thresholds = dict(config.thresholds)
        self.device = device
        self._mean = torch.tensor(config.mean, device=device).view(1, 3, 1, 1)
        self._std = torch.tensor(config.std, device=device).view(1, 3, 1, 1)

    def preprocess(self, images: np.ndarray | torch.Tensor) -> torch.Tensor:
        """uint8 NHWC -> normalised float NCHW at the tagger's input size (area-style downscale)."""
        x = torch.as_tensor(np.asarray(images)).to(self.device)
        if x.ndim == 3:
            x = x[None]
        x = x.permute(0, 3, 1, 2).float().div(255)
        if x.shape[-2:] != (self.config.input_size, self.config.input_size):
            x = F.interpolate(x, size=(self.config.input_size,) * 2, mode="bilinear", antialias=True,
                              align_corners=False)
        return (x - self._mean) / self._std

    @property
    def load_size(self) -> int | None:
        """The size `kyara data tag` decodes pictures at for `predict` (the input size, as `kyara data pack`
        resizes)."""
        return self.config.input_size

    @torch.no_grad()
    def _batched(self, images: np.ndarray, fn, batch_size: int) -> np.ndarray:
        out = [fn(self.preprocess(images[i:i + batch_size])).float().cpu().numpy()
               for i in range(0, len(images), batch_size)]
        return np.concatenate(out) if out else np.zeros((0, 0), np.float32)

    def predict(self, images: np.ndarray, batch_size: int = 256) -> np.ndarray:
        """Tag probabilities, N x T in vocabulary order."""
        return self._batched(images, lambda x: probabilities(self.net(x), self.vocab), batch_size)

    def features(self, images: np.ndarray, batch_size: int = 256) -> np.ndarray:
        """Penultimate (pooled backbone) features, N x F: the space for KID/FID in tagger space."""
        return self._batched(images, self.net.features, batch_size)

    def tags_of(self, probs: np.ndarray) -> list[list[str]]:
        """Tag names per image from `predict`'s probabilities and this tagger's thresholds."""
        return tags_from_probabilities(probs, self.vocab, self.thresholds)

    def undecided_of(self, probs: np.ndarray) -> list[list[str]] | None:
        """Per image, the tags whose probability lies within the tagger's bounds (None: it has no bounds)."""
        if not self.config.bounds:
            return None
        cols = [(self.vocab.index(t), lo, hi) for t, (lo, hi) in self.config.bounds.items()]
        return [[self.vocab.tags[c] for c, lo, hi in cols if lo <= row[c] < hi] for row in np.asarray(probs)]


def build_net(config: TaggerConfig, backbone_weights: str | Path | None = None) -> TaggerNet:
    """The network a config describes (untrained)."""
    vocab = config.vocab
    return TaggerNet(config.backbone, len(vocab), backbone_weights, attribute_backbone=config.attribute_backbone,
                     attribute_columns=attribute_columns(vocab), mouth_backbone=config.mouth_backbone,
                     mouth_columns=mouth_columns(vocab, config.mouth_tags) if config.mouth_backbone else (),
                     mouth_box=config.mouth_box, mouth_scale=config.mouth_scale)


def save_tagger(out_dir: str | Path, net: TaggerNet, config: TaggerConfig) -> Path:
    """Write tagger.safetensors and tagger.json; each goes to a temporary name first, then is renamed.

    The backbones written are the net's own, whatever `config` says, so the pair always loads."""
    out_dir = Path(out_dir)
    config = replace(config, backbone=net.backbone_name, attribute_backbone=net.attribute_backbone_name,
                     mouth_backbone=net.mouth_backbone_name, mouth_box=net.mouth_box, mouth_scale=net.mouth_scale)
    out_dir.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().contiguous().cpu() for k, v in net.state_dict().items()}
    with atomic_path(out_dir / WEIGHTS) as tmp:
        save_file(state, str(tmp))
    write_text_atomic(out_dir / CONFIG, json.dumps(asdict(config), indent=2))
    return out_dir


def load_tagger(path: str | Path | None = None, device: str = "cpu") -> Tagger:
    """A tagger from a folder (or its tagger.json / tagger.safetensors); None loads the shipped one."""
    path = Path(path) if path is not None else SHIPPED
    folder = path if path.is_dir() else path.parent
    if not (folder / CONFIG).is_file() or not (folder / WEIGHTS).is_file():
        raise FileNotFoundError(f"{path}: no tagger here (expected {CONFIG} and {WEIGHTS}); "
                                "train one with `kyara tagger train`")
    raw = json.loads((folder / CONFIG).read_text())
    config = TaggerConfig(**{**raw, "mean": tuple(raw["mean"]), "std": tuple(raw["std"]),
                             "mouth_box": tuple(raw.get("mouth_box", MOUTH_BOX))})
    net = build_net(config)
    net.load_state_dict(load_file(str(folder / WEIGHTS)))
    return Tagger(net, config, device)
