"""Building the networks and starting them from other weights.

`create_generator` / `create_discriminator` pick a network by `ModelConfig.family` (as timm's `create_model`
does): "srresnet", the SRResNet G and residual D of Jin et al. 2017 (training/models.py), or "dcgan", the
baseline it is compared with (training/dcgan.py). Training, checkpoints and sampling build their networks here.
"""
from __future__ import annotations

import torch
from torch import nn

from training.dcgan import DCGANDiscriminator, DCGANGenerator
from training.models import ATTENTION, Discriminator, Generator, ModelConfig

_FAMILIES: dict[str, tuple[type[nn.Module], type[nn.Module]]] = {
    "srresnet": (Generator, Discriminator),
    "dcgan": (DCGANGenerator, DCGANDiscriminator),
}


def create_generator(cfg: ModelConfig, n_tags: int) -> nn.Module:
    """noise (N, Z) + labels (N, T) -> image (N, 3, R, R) in [-1, 1], whatever the family."""
    return _FAMILIES[cfg.family][0](cfg, n_tags)


def create_discriminator(cfg: ModelConfig, n_tags: int) -> nn.Module:
    """image (N, 3, R, R) [, labels] -> (real/fake logit (N,), tag logits (N, T), or None without a tag head)."""
    return _FAMILIES[cfg.family][1](cfg, n_tags)


def load_across_vocabularies(module: nn.Module, state: dict[str, torch.Tensor],
                             old_tags: list[str], new_tags: list[str]) -> list[str]:
    """Load weights trained on `old_tags` into a module built for `new_tags`, matching tags by name.

    Everything that does not depend on the tags is copied as it is; in the per-tag weights a tag both
    know keeps its slice, and a new tag keeps the module's own initialisation (zero in G's input layer, so
    the new label starts by changing nothing). This lets a model trained for hours on the colours go on to
    learn new tags instead of starting again. Returns the new tags.

    A module with self-attention (`attention_res`) may start from weights that have none: the attention block
    keeps its own initialisation (gamma = 0, the identity). Any other weight the state lacks, or has beyond the
    module's, is an error: another kind of network.
    """
    axes = module.tag_axes()
    own = module.state_dict()
    if isinstance(module, Generator):
        own["fc.weight"][:, module.cfg.noise_dim:].zero_()
    prefix = f"{ATTENTION}."
    fresh_attention = not any(name.startswith(prefix) for name in state)
    extra = sorted(set(state) - set(own))
    if extra:
        more = f" (and {len(extra) - 1} more)" if len(extra) > 1 else ""
        raise KeyError(f"the weights to start from have {extra[0]!r}{more}, which this network lacks: "
                       "another kind of network")
    for name, tensor in own.items():
        if name not in state and fresh_attention and name.startswith(prefix):
            continue                      # new self-attention: stays at its init (gamma = 0)
        if name not in state:
            raise KeyError(f"the weights to start from have no {name!r}: another kind of network")
        if name not in axes:
            if state[name].shape != tensor.shape:
                raise ValueError(f"{name}: shape {tuple(state[name].shape)} cannot start {tuple(tensor.shape)} "
                                 "(another network size)")
            tensor.copy_(state[name])
            continue
        axis, first = axes[name]          # the tags come last along `axis`, after `first` other slices
        tensor.narrow(axis, 0, first).copy_(state[name].narrow(axis, 0, first))
        for t in set(old_tags) & set(new_tags):
            tensor.narrow(axis, first + new_tags.index(t), 1).copy_(state[name].narrow(axis, first + old_tags.index(t), 1))
    module.load_state_dict(own)
    return [t for t in new_tags if t not in old_tags]
