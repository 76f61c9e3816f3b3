"""The report on a small synthetic store with known answers; empty and corrupt stores."""
import math
import re

import pandas as pd
import pytest

from analysis.fits import decay_summary, line_fit
from analysis.report import main as report_main
from tests.synthetic import write_all


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    store = write_all(tmp_path_factory.mktemp("store"))
    out = tmp_path_factory.mktemp("report")
    assert report_main([str(store), "--out", str(out)]) == 0
    return store, out


def test_decay_summary_recovers_exact_decay():
    profile = pd.DataFrame({"distance": range(50), "grad_norm": [10 ** (-0.2 * d) for d in range(50)]})
    s = decay_summary(profile, 0.1, 0.9)
    assert s["decay_per_step"] == pytest.approx(-0.2, rel=1e-9)
    assert s["half_life_steps"] == pytest.approx(math.log10(2) / 0.2, rel=1e-9)
    assert s["horizon_1e6"] == pytest.approx(30, rel=1e-9) and s["r2"] == pytest.approx(1.0)
    assert s["fit_window"] == "5..44"


def test_underflow_is_counted_not_fitted():
    g = [10 ** (-0.5 * d) if d < 30 else 0.0 for d in range(40)]
    s = decay_summary(pd.DataFrame({"distance": range(40), "grad_norm": g}), 0.0, 1.0)
    assert s["underflow_points"] == 10
    assert s["decay_per_step"] == pytest.approx(-0.5, rel=1e-9)  # zeros left out of the fit


def test_line_fit():
    a, b, r2 = line_fit(pd.Series([1.0, 2, 3]).to_numpy(), pd.Series([3.0, 5, 7]).to_numpy())
    assert (a, b, r2) == pytest.approx((1, 2, 1))


def test_report_links_resolve_and_files_exist(built):
    _, out = built
    text = (out / "report.md").read_text()
    links = re.findall(r"\]\(([^)#]+)\)", text)
    assert links, "no links in report"
    for link in links:
        assert (out / link).is_file(), link
    for anchor in re.findall(r"\]\(#([^)]+)\)", text):
        assert f'<a id="{anchor}"></a>' in text, anchor
    assert list((out / "figures").glob("*.svg")) and list((out / "tables").glob("*.md"))


def test_scorecard_states_the_measured_numbers(built):
    _, out = built
    text = (out / "report.md").read_text()
    card = text.split("## Scorecard")[1].split("<a id")[0]
    # half-lives log10(2)/0.05, /0.1, /0.3 = 6.0, 3.0, 1.0
    assert "half-life at init, T=80: gru 6, lstm (fb 0) 3, rnn 1 steps" in card
    assert "half-life init -> trained (adding, T=100): lstm 1 -> 10, rnn 1 -> 1.2 steps" in card  # init -> trained, after long_range
    assert "lstm solved 3/3" in card and "rnn solved 0/3" in card
    assert "LSTM/RNN step time, median (range): native 3.00x (3.00 to 3.00, 6 configurations); FLOP ratio 4x" in card
    assert "bidirectional/unidirectional 2.00x" in card and "parameters 2.00x to 2.00x" in card
    assert "not measured yet" in card  # gates: no ref_lstm in the synthetic store


def test_half_life_table_values(built):
    _, out = built
    t = pd.read_csv(out / "tables" / "half_lives.csv")
    for cell, decay in {"rnn": -0.3, "lstm": -0.1, "gru": -0.05}.items():
        rows = t[t["cell"] == cell]
        assert rows["decay_per_step"].to_numpy() == pytest.approx(decay, rel=1e-9)
        assert rows["jacobian_decay_per_step"].to_numpy() == pytest.approx(1.1 * decay, rel=1e-9)
        assert rows["gate_decay_per_step"].to_numpy() == pytest.approx(1.5 * decay, rel=1e-9)
    spread = pd.read_csv(out / "tables" / "decay_vs_seq_len.csv")
    assert spread["rel_spread_T>=100"].isna().all()  # one lag >= 100 in the synthetic store
    assert spread.filter(like="T=").to_numpy().ravel().tolist() == pytest.approx(
        [d for d in (-0.05, -0.05, -0.05, -0.1, -0.1, -0.1, -0.3, -0.3, -0.3)])


def test_report_is_reproducible(built, tmp_path):
    store, out = built
    assert report_main([str(store), "--out", str(tmp_path)]) == 0
    for f in (out / "figures").glob("*.svg"):
        assert f.read_bytes() == (tmp_path / "figures" / f.name).read_bytes(), f.name
    assert (out / "tables" / "half_lives.csv").read_text() == (tmp_path / "tables" / "half_lives.csv").read_text()


def test_empty_or_missing_store_says_run_make_bench(tmp_path, capsys):
    assert report_main([str(tmp_path / "missing")]) == 1
    assert "run `make bench` first" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert report_main([str(tmp_path / "empty"), "--out", str(tmp_path / "r")]) == 1
    err = capsys.readouterr().err
    assert "run `make bench` first" in err and len(err.strip().splitlines()) == 1


def test_corrupt_file_is_named_and_skipped(tmp_path, capsys):
    from tests.synthetic import write_gradients
    store = tmp_path / "store"
    write_gradients(store)
    bad = store / "0123456789abcdef.parquet"
    bad.write_bytes(b"PAR1 truncated")
    before = {p.name: p.read_bytes() for p in store.iterdir()}
    assert report_main([str(store), "--out", str(tmp_path / "r")]) == 0
    assert str(bad) in capsys.readouterr().err
    assert {p.name: p.read_bytes() for p in store.iterdir()} == before  # nothing changed
