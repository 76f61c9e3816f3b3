"""ref_lstm reproduces nn.LSTM (outputs, states, all gradients) to float64 rounding."""
import itertools

import pytest
import torch
from torch import nn

from bench.cells.build import build_model
from bench.cells.classic import ReferenceLSTM
from bench.cells.registry import REGISTRY
from bench.cells.stack import layer_stack

TOL = 1e-12


def _pair(layers, bidir, I=5, H=6):
    torch.manual_seed(layers * 10 + bidir)
    ref_model = nn.LSTM(I, H, layers, bidirectional=bidir).double()
    ours = ReferenceLSTM(I, H, layers, bidirectional=bidir).double()
    ours.load_state_dict(ref_model.state_dict())
    return ref_model, ours


@pytest.mark.parametrize("layers,bidir", list(itertools.product([1, 2, 3], [False, True])))
def test_reference_lstm_matches_nn_lstm(layers, bidir):
    ref_model, ours = _pair(layers, bidir)
    D = 2 if bidir else 1
    x = torch.randn(7, 3, 5, dtype=torch.float64)
    h0 = torch.randn(layers * D, 3, 6, dtype=torch.float64)
    c0 = torch.randn(layers * D, 3, 6, dtype=torch.float64)
    results = []
    for model in (ref_model, ours):
        xi, hi, ci = (t.clone().requires_grad_(True) for t in (x, h0, c0))
        out, (h, c) = model(xi, (hi, ci))
        w = torch.linspace(-1, 1, out.numel(), dtype=torch.float64).view_as(out)
        ((out * w).sum() + h.pow(2).sum() + c.sin().sum()).backward()
        grads = {n: p.grad for n, p in model.named_parameters()}
        results.append((out, h, c, xi.grad, hi.grad, ci.grad, grads))
    (o1, h1, c1, gx1, gh1, gc1, g1), (o2, h2, c2, gx2, gh2, gc2, g2) = results
    for a, b in [(o1, o2), (h1, h2), (c1, c2), (gx1, gx2), (gh1, gh2), (gc1, gc2)]:
        assert a.shape == b.shape
        assert (a - b).abs().max().item() < TOL
    assert g1.keys() == g2.keys()
    for name in g1:
        assert (g1[name] - g2[name]).abs().max().item() < TOL, name


def test_tutorial_example_shapes():
    """nn.LSTM(5, 6, 2) on (1, 3, 5) with h0, c0 (2, 3, 6): output (1, 3, 6), h_n, c_n (2, 3, 6)."""
    for cls in (nn.LSTM, ReferenceLSTM):
        lstm = cls(5, 6, 2)
        out, (h, c) = lstm(torch.randn(1, 3, 5), (torch.randn(2, 3, 6), torch.randn(2, 3, 6)))
        assert out.shape == (1, 3, 6) and h.shape == (2, 3, 6) and c.shape == (2, 3, 6)


def test_reference_lstm_unbatched_and_default_state():
    ref_model, ours = _pair(2, True)
    x = torch.randn(4, 5, dtype=torch.float64)
    out1, (h1, _) = ref_model(x)
    out2, (h2, _) = ours(x)
    assert out2.shape == out1.shape == (4, 12) and h2.shape == h1.shape == (4, 6)
    assert (out1 - out2).abs().max() < TOL


def test_reference_lstm_rejects_wrong_input_size():
    with pytest.raises(ValueError, match=r"input must be \(T, B, 5\)"):
        ReferenceLSTM(5, 6)(torch.randn(3, 2, 4))


@pytest.mark.parametrize("cell", sorted(REGISTRY))
@pytest.mark.parametrize("bidir", [False, True])
def test_registry_contract_and_parameter_counts(cell, bidir):
    """Every cell: (T, B, I) -> (T, B, D*H); parameter count = G * D * sum over layers of
    H * (layer_input + H + 2), without the H + 1 of W_hh and b_hh for the diagonal cells."""
    I, H, L, D = 4, 8, 2, 2 if bidir else 1
    model = build_model(cell, I, H, L, bidir)
    out, _ = model(torch.randn(5, 3, I))
    assert out.shape == (5, 3, D * H)
    rec = (H + 2) if REGISTRY[cell].recurrent_matrix else 1
    expected = sum(REGISTRY[cell].gates * D * H * ((I if k == 0 else D * H) + rec) for k in range(L))
    if REGISTRY[cell].param_count is not None:  # the LRU: its own count (tests/test_modern.py spells it out)
        expected = REGISTRY[cell].param_count(I, H, L, bidir)
    assert sum(p.numel() for p in model.parameters()) == expected


def test_parameter_ratios():
    count = lambda m: sum(p.numel() for p in m.parameters())
    assert count(build_model("lstm", 16, 32)) == 4 * count(build_model("rnn", 16, 32))
    assert count(build_model("lstm", 16, 32, bidirectional=True)) == 2 * count(build_model("lstm", 16, 32))


@pytest.mark.parametrize("cell", ["lstm", "ref_lstm"])
def test_forget_bias_shifts_only_the_forget_slice(cell):
    torch.manual_seed(1)
    a = build_model(cell, 3, 4, 2, True)
    torch.manual_seed(1)
    b = build_model(cell, 3, 4, 2, True, forget_bias=2.5)
    for (name, pa), (_, pb) in zip(a.named_parameters(), b.named_parameters()):
        diff = pb - pa
        if name.startswith("bias_ih"):
            assert torch.allclose(diff[4:8], torch.full((4,), 2.5))
            assert diff[:4].abs().max() == 0 and diff[8:].abs().max() == 0
        else:
            assert diff.abs().max() == 0


@pytest.mark.parametrize("cell", sorted(REGISTRY))
def test_layer_stack_equals_fused_module(cell):
    model = build_model(cell, 3, 5, 3, True).double()
    x = torch.randn(6, 2, 3, dtype=torch.float64)
    h = x
    for layer in layer_stack(model):
        h, _ = layer(h)
    assert (model(x)[0] - h).abs().max() < TOL


@pytest.mark.parametrize("layers,bidir", [(1, False), (2, True)])
def test_same_seed_gives_nn_lstm_initial_weights(layers, bidir):
    """Same seed, same initial weights: the report's ref_lstm/lstm parity rests on this."""
    torch.manual_seed(3)
    ref_model = nn.LSTM(5, 6, layers, bidirectional=bidir)
    torch.manual_seed(3)
    ours = ReferenceLSTM(5, 6, layers, bidirectional=bidir)
    for (n1, p1), (n2, p2) in zip(ref_model.named_parameters(), ours.named_parameters()):
        assert n1 == n2 and torch.equal(p1, p2)
