"""Selective copying that tests selection (conf/experiment/selection.yaml): with one layer and a
linear readout, the time-invariant LRU is a control that cannot select, because its output at step
t is a constant plus a sum over earlier positions of a function of (t - position, token) alone.
That premise of the proof (docs/architecture.md, "Selective copying: why one layer") is checked
here on the model itself; it is true by construction, not a measurement. The same check fails
for the cells whose transition depends on the input, which is what lets them select."""
import pytest
import torch

from bench.cells.build import build_model
from bench.tasks.long_lag import COPY_ALPHABET

T, SYMBOLS = 14, COPY_ALPHABET + 2   # one-hot classes: 0 blank, 1..8 tokens, 9 delimiter


def sequence(tokens):
    """(T, 1, SYMBOLS) float64: blanks, with {position: symbol} set."""
    x = torch.zeros(T, 1, SYMBOLS, dtype=torch.float64)
    x[:, 0, 0] = 1.0
    for p, s in tokens.items():
        x[p, 0, 0], x[p, 0, s] = 0.0, 1.0
    return x


def departure(cell):
    """The largest violation, relative to the outputs' scale, of (a) superposition: two tokens'
    effects on the output add up, and (b) time invariance: a token's effect depends on its distance
    to the output step only."""
    torch.manual_seed(0)
    model = build_model(cell, SYMBOLS, 16, 1).double()
    with torch.no_grad():
        y = lambda tokens: model(sequence(tokens))[0][:, 0]  # (T, H)
        blank = y({})
        effect = lambda tokens: y(tokens) - blank
        a, b, both = effect({2: 3}), effect({6: 5}), effect({2: 3, 6: 5})
        shifted = effect({5: 3})  # token 3 three steps later
    scale = blank.abs().max()
    return max(((both - a - b).abs().max() / scale).item(),
               ((shifted[3:] - a[:-3]).abs().max() / scale).item())


def test_one_layer_lru_output_is_a_sum_over_positions_of_distance_and_token():
    assert departure("lru") < 1e-12


@pytest.mark.parametrize("cell", ["mingru", "lstm"])
def test_cells_with_input_dependent_transitions_are_not(cell):
    assert departure(cell) > 1e-3
