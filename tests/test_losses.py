import torch
from torch import nn

from training.losses import dragan_perturb, gradient_penalty, tag_loss


class LinearD(nn.Module):
    """D(x) = w . x + b: its input gradient is w everywhere, so the penalty is (||w|| - 1)^2."""

    def __init__(self, w: torch.Tensor):
        super().__init__()
        self.w = nn.Parameter(w)

    def forward(self, x):
        return x.flatten(1) @ self.w + 0.3


def test_gradient_penalty_equals_hand_computed_value():
    w = torch.tensor([3.0, 4.0, 0.0, 0.0])             # ||w|| = 5 -> (5 - 1)^2 = 16
    real = torch.tensor([[[[0.0, 1.0], [2.0, 3.0]]]] * 3)
    x_hat = dragan_perturb(real, torch.Generator().manual_seed(0))
    assert (x_hat >= real).all() and (x_hat <= real + 0.5 * real.std()).all()
    gp = gradient_penalty(LinearD(w)(x_hat), x_hat)
    assert torch.isclose(gp, torch.tensor(16.0))
    gp.backward()                                       # d/dw (||w|| - 1)^2 = 2 (||w|| - 1) w / ||w||
    d = LinearD(w)
    gradient_penalty(d(x_hat), x_hat).backward()
    assert torch.allclose(d.w.grad, 2 * 4 * w / 5)


def test_tag_loss_ignores_unknown_labels():
    logits = torch.zeros(2, 3, requires_grad=True)
    labels = torch.tensor([[1, 0, -1], [-1, -1, 1]], dtype=torch.int8)
    loss = tag_loss(logits, labels)
    assert torch.isclose(loss, torch.log(torch.tensor(2.0)) * 3 / 2)
    loss.backward()
    assert logits.grad[0, 2] == 0 and logits.grad[1, 0] == 0 and logits.grad[1, 1] == 0
    assert logits.grad[0, 0] != 0
