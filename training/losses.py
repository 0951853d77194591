"""DRAGAN + ACGAN losses of Jin et al. 2017.

L(D) = lambda_adv * L_adv(D) + L_cls(real) + lambda_gp * L_gp
L(G) = lambda_adv * L_adv(G) + L_cls(fake)
with lambda_adv = the number of tags and lambda_gp = 0.5 in the paper.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F


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
