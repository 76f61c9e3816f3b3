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


@pytest.mark.parametrize("solvers, control_solves, verdict", [
    (("lstm",), False, "mixed"), (("lstm", "mingru"), False, "supported"), ((), False, "contradicted"),
    (("lstm", "mingru"), True, "contradicted")])
def test_selects_is_computed_from_the_reported_seeds_against_the_control(tmp_path, solvers, control_solves, verdict):
    """A cell selects by content where its solved fraction over the 10 reported seeds lies wholly
    above the control's: the verdict flips with who solves, and the tuning seeds never count."""
    import pandas as pd

    from analysis.report.__main__ import main
    from tests.synthetic import write_selection_study
    store, out = write_selection_study(tmp_path / "s", solvers, control_solves), tmp_path / "r"
    assert main([str(store), "--out", str(out)]) == 0
    v = pd.read_csv(out / "tables" / "verdicts.csv").set_index("claim").loc["selects"]
    assert v["verdict"] == verdict
    t = pd.read_csv(out / "tables" / "selection_summary.csv").set_index("cell")
    assert t.at["lru (control)", "solved, reported seeds [95% Wilson]"].startswith("10/10" if control_solves else "0/10")
    assert t.at["lstm", "solved, reported seeds [95% Wilson]"].startswith("10/10" if "lstm" in solvers else "0/10")
    assert (out / "figures" / "selection_learning_curves.png").exists()
    assert "selective_copy_runs" not in (out / "report.md").read_text()  # not the two-layer modern table
