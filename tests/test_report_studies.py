"""Report sections of the studies beyond the default suite: LSTM against the modern cells,
what makes it slow on a CPU, and the store-level warnings they need; synthetic stores with
known answers (tests/synthetic.py)."""
import pandas as pd
import pytest

from analysis.report import main as report_main


def test_modern_section_tables_claims_and_intervals(tmp_path):
    """Parity and selective copying land in their own section with Wilson intervals over seeds,
    and in the scorecard; the long-lag section keeps only its own tasks."""
    from tests.synthetic import write_modern
    store, out = write_modern(tmp_path / "s"), tmp_path / "r"
    assert report_main([str(store), "--out", str(out)]) == 0
    text = (out / "report.md").read_text()
    detail = pd.read_csv(out / "tables" / "parity_length_generalisation.csv").set_index(["cell", "test_factor"])
    assert detail.at[("lstm", 10), "seeds_generalising"] == 3 and detail.at[("slstm", 10), "seeds_generalising"] == 0
    assert detail.at[("slstm", 2), "seeds_generalising"] == 3 and detail.at[("slstm", 10), "median_acc"] == 0.9
    assert detail.at[("lstm", 10), "generalising_lo"] == pytest.approx(0.4385, abs=1e-3)   # Wilson 3/3
    assert detail.at[("mingru", 10), "generalising_hi"] == pytest.approx(0.5615, abs=1e-3)  # Wilson 0/3
    summary = pd.read_csv(out / "tables" / "modern_summary.csv").set_index("cell")
    assert summary.loc["mingru", "selective copy: seeds solved"] == "2/3 [0.21, 0.94]"
    assert summary.loc["lstm", "parity: seeds solved at L"] == "3/3 [0.44, 1.00]"
    assert len(summary.columns) + 1 <= 8
    assert ("running parity at 10x the training length" in text and "lstm 1.00, 3/3 [0.44, 1.00]" in text
            and "mingru 0.50, 0/3 [0.00, 0.56]" in text)
    assert "mingru 2/3 [0.21, 0.94], recall 1.00" in text and "lstm 0/3 [0.00, 0.56], recall 0.12" in text
    assert (out / "figures" / "parity_length_generalisation.png").exists()
    assert (out / "figures" / "selective_copy_learning_curves.png").exists()
    success = pd.read_csv(out / "tables" / "long_range_success.csv")
    assert success["task"].tolist() == ["adding"]


def test_a_store_mixing_cluster_and_local_timings_is_flagged(tmp_path):
    from analysis.load import load_store, version_warnings
    from tests.synthetic import write_throughput
    store = tmp_path / "s"
    write_throughput(store)
    df = load_store(store)
    assert not any("SLURM" in w for w in version_warnings(df))
    first = df["config_hash"].iloc[0]
    df["slurm_job_id"] = ""
    df.loc[df["config_hash"] == first, "slurm_job_id"] = "17_0"
    assert any("mixes throughput points timed in SLURM jobs (1) and outside" in w for w in version_warnings(df))


def test_cpu_cost_section_subnormals_caches_threads_backends(tmp_path):
    from tests.synthetic import write_cpu_cost
    store, out = write_cpu_cost(tmp_path / "s"), tmp_path / "r"
    assert report_main([str(store), "--out", str(out)]) == 0
    text = (out / "report.md").read_text()
    sub = pd.read_csv(out / "tables" / "subnormal_cost.csv").set_index(["measure_loss", "seq_len"])
    assert sub.at[("last", 200), "ratio"] == pytest.approx(5.0) and sub.at[("every", 200), "ratio"] == pytest.approx(1.0)
    assert sub.at[("last", 200), "ratio_lo"] > 4.5 and sub.at[("last", 100), "ratio"] == pytest.approx(1.0)
    assert "Flush subnormals (`torch.set_flush_denormal(True)`) when the loss sits on the last step: from seq_len 200 on" in text
    tok = pd.read_csv(out / "tables" / "cost_per_token.csv").set_index("to_seq_len")
    assert tok.at[200, "growth"] == pytest.approx(2.0) and tok.at[200, "fits_from"] == "L2" and tok.at[200, "fits_to"] == "L3"
    assert tok.at[400, "growth"] == pytest.approx(1.0)
    assert "1 of those 1 coincide with the working set leaving a cache level" in text
    thr = pd.read_csv(out / "tables" / "thread_scaling.csv")
    assert thr["ratio"].iloc[0] == pytest.approx(1.6)
    be = pd.read_csv(out / "tables" / "backend_by_size.csv").set_index(["hidden_size", "batch_size"])
    assert be.at[(256, 16), "winner"] == "onednn" and be.at[(64, 64), "winner"] == "native"
    assert "oneDNN wins in 2 of 4 sizes" in text
    assert "largest kept/flushed step-time ratio, loss on the last step: 5.00x" in text
