"""DRAGAN + ACGAN losses of Jin et al. 2017, and the label sampler for generated faces.

L(D) = lambda_adv * L_adv(D) + L_cls(real) + lambda_gp * L_gp
L(G) = lambda_adv * L_adv(G) + L_cls(fake)
with lambda_adv = the number of tags and lambda_gp = 0.5 in the paper.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from tagger.vocab import Vocabulary


def tag_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Multi-label BCE summed over the known tags and averaged over the batch.

    Summed, not averaged, over tags: the paper balances it against an adversarial loss weighted by the
    number of tags. Labels of -1 (unknown) contribute nothing, not even a gradient.
    """
    known = labels >= 0
    loss = F.binary_cross_entropy_with_logits(logits.float(), labels.clamp(min=0).float(), reduction="none")
    return (loss * known).sum() / len(logits)


def adv_loss(logits: torch.Tensor, real: bool) -> torch.Tensor:
    target = torch.ones_like(logits) if real else torch.zeros_like(logits)
    return F.binary_cross_entropy_with_logits(logits.float(), target.float())


def dragan_perturb(real: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """DRAGAN's sample point x_hat = x + 0.5 * std(x) * U(0, 1), as a leaf that wants its gradient.

    Penalising D's gradient near the real data (not between real and fake, as WGAN-GP does) is what
    stops the sharp gradients that lead to mode collapse.
    """
    noise = torch.rand(real.shape, generator=generator, device=real.device, dtype=real.dtype)
    return (real + 0.5 * real.std() * noise).detach().requires_grad_(True)


def gradient_penalty(adv_logits: torch.Tensor, x_hat: torch.Tensor) -> torch.Tensor:
    """E[(||d D(x_hat) / d x_hat|| - 1)^2], kept differentiable so D can be trained on it."""
    (grad,) = torch.autograd.grad(adv_logits.float().sum(), x_hat, create_graph=True)
    return ((grad.float().flatten(1).norm(dim=1) - 1) ** 2).mean()


def sample_labels(vocab: Vocabulary, priors: torch.Tensor, n: int, generator: torch.Generator | None = None
                  ) -> torch.Tensor:
    """Labels for generated faces: one tag per exclusive group, drawn by the data's frequencies;
    every other tag on with its own frequency."""
    labels = torch.zeros(n, len(vocab))
    exclusive_cols = set()
    for group in vocab.exclusive_groups:
        cols = torch.tensor([vocab.index(t) for t in group.tags])
        exclusive_cols.update(cols.tolist())
        choice = torch.multinomial(priors[cols].float().clamp(min=1e-6), n, replacement=True, generator=generator)
        labels[torch.arange(n), cols[choice]] = 1.0
    rest = [i for i in range(len(vocab)) if i not in exclusive_cols]
    if rest:
        p = priors[rest].float().expand(n, -1)
        labels[:, rest] = torch.bernoulli(p, generator=generator)
    return labels
