"""End to end as a user types it: python -m bench, single point and a multirun sweep."""
import pandas as pd
import pytest

from tests.conftest import run_cli


@pytest.mark.slow
def test_single_point_and_sweep_then_rerun_skips(tmp_path):
    store = tmp_path / "store"
    small = ["model.hidden_size=8", "data.batch_size=4", f"results_dir={store}"]
    proc = run_cli(["bench", "measure=gradients", "data.seq_len=12", *small], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert len(list(store.glob("*.parquet"))) == 1
    proc = run_cli(["bench", "-m", "model.cell=rnn,lstm", "data.seq_len=12,20", *small])
    assert proc.returncode == 0, proc.stderr
    assert "4 points: 3 measured, 1 already stored" in proc.stderr
    frame = pd.concat(pd.read_parquet(p) for p in store.glob("*.parquet"))
    assert sorted(frame.groupby(["cell", "seq_len"]).size().items()) == [
        (("lstm", 12), 12), (("lstm", 20), 20), (("rnn", 12), 12), (("rnn", 20), 20)]
    proc = run_cli(["bench", "-m", "model.cell=rnn,lstm", "data.seq_len=12,20", *small])
    assert "0 measured, 4 already stored" in proc.stderr
