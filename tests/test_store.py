"""Records and the store: atomic per-point files, dtype round-trip, skip and force."""
import pandas as pd
import pyarrow.parquet as pq

from bench.records import STATUSES, to_frame
from bench.run import resolve, run_point
from bench.store import is_done, point_path, write_point


def test_round_trip_keeps_dtypes(tmp_path):
    frame = to_frame([{"t": 0, "grad_norm": 0.5, "underflow": False},
                      {"t": 1, "grad_norm": 0.25, "underflow": False}],
                     {"cell": "rnn", "forget_bias": None, "bidirectional": True, "seq_len": 2},
                     {"torch_version": "x", "threads": 2}, "abc")
    path = write_point(point_path(tmp_path, "abc"), frame)
    back = pd.read_parquet(path)
    assert list(back.columns) == list(frame.columns)
    assert back.dtypes.to_dict() == frame.dtypes.to_dict()
    assert back["status"].tolist() == ["ok", "ok"] and back["bidirectional"].all()
    assert not list(tmp_path.glob(".*.tmp"))  # no temp file left behind


def test_failed_point_is_one_row_with_status(tmp_path):
    frame = to_frame([], {"cell": "lstm"}, {}, "h", status="oom", error="CUDA out of memory")
    assert len(frame) == 1 and frame.loc[0, "status"] == "oom" and "oom" in STATUSES
    write_point(point_path(tmp_path, "h"), frame)
    assert not is_done(point_path(tmp_path, "h"))  # not ok: a re-run measures it again


def test_unreadable_file_is_not_done(tmp_path):
    p = point_path(tmp_path, "bad")
    p.write_bytes(b"not parquet")
    assert not is_done(p)


def test_rerun_skips_stored_points_and_force_recomputes(make_cfg, tmp_path):
    cfg = make_cfg([f"results_dir={tmp_path}", "data.seq_len=8", "model.hidden_size=4"])
    assert run_point(cfg) == "ok"
    path = point_path(tmp_path, resolve(cfg).chash)
    stamp = path.stat().st_mtime_ns
    assert run_point(cfg) == "skipped"
    assert path.stat().st_mtime_ns == stamp  # untouched
    forced = make_cfg([f"results_dir={tmp_path}", "data.seq_len=8", "model.hidden_size=4", "force=true"])
    assert run_point(forced) == "ok"
    assert path.stat().st_mtime_ns != stamp
    assert len(list(tmp_path.glob("*.parquet"))) == 1


def test_records_carry_config_and_provenance(make_cfg, tmp_path):
    cfg = make_cfg([f"results_dir={tmp_path}", "data.seq_len=6", "model.cell=gru"])
    run_point(cfg)
    frame = pq.read_table(next(tmp_path.glob("*.parquet"))).to_pandas()
    for col in ("cell", "input_size", "hidden_size", "num_layers", "bidirectional", "forget_bias",
                "seq_len", "batch_size", "device", "dtype", "seed", "torch_version", "device_name",
                "backend", "threads", "git_sha", "timestamp", "config_hash", "status", "error",
                "condition", "t", "distance", "grad_norm"):
        assert col in frame.columns, col
    assert frame["dtype"].unique().tolist() == ["float64"]
    assert frame["forget_bias"].isna().all()  # not an LSTM: no forget gate
    assert sorted(frame["t"]) == list(range(6))
