"""IndRNN (bench/cells/indrnn.py), the worked example of docs/architecture.md "How to add a cell":
its module computes Li et al.'s recurrence, its step function agrees with the module, and the
registry's counts are its parameters."""
import pytest
import torch

from bench.cells.build import build_model
from bench.cells.registry import spec


@pytest.mark.parametrize("nonlinearity", ["relu", "tanh"])
def test_indrnn_is_an_independent_recurrence_per_unit(nonlinearity):
    torch.manual_seed(0)
    m = build_model("indrnn", 3, 5, nonlinearity=nonlinearity).double()
    x = torch.randn(7, 2, 3, dtype=torch.float64)
    act = torch.relu if nonlinearity == "relu" else torch.tanh
    h, want = torch.zeros(2, 5, dtype=torch.float64), []
    for t in range(7):  # h_t = act(W x_t + b + u * h_{t-1}): unit j reads only its own past
        h = act(x[t] @ m.weight_ih_l0.T + m.bias_ih_l0 + m.u_l0 * h)
        want.append(h)
    y, h_n = m(x)
    assert torch.allclose(y, torch.stack(want)) and torch.allclose(h_n[0], want[-1])
    step, s = spec("indrnn").step(m), (torch.zeros(2, 5, dtype=torch.float64),)
    for t in range(7):
        s = step(x[t], s)
    assert torch.allclose(s[0], want[-1])


def test_indrnn_counts_its_parameters():
    m = build_model("indrnn", 3, 5, 2, True)
    assert sum(p.numel() for p in m.parameters()) == spec("indrnn").params(3, 5, 2, True)
