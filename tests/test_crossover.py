"""The crossover (analysis/reduce/crossover.py): who overtakes whom from which length, per thread
count, against the torch.nn cells on their fastest backend, from points timed in rounds."""
import math

import pandas as pd

from analysis.reduce.crossover import length_text, overtakes_from
from tests.synthetic import _config, _write


def test_overtakes_from_is_the_first_length_of_the_last_run_of_faster_lengths():
    d = pd.DataFrame({"seq_len": [16, 64, 256, 1024, 4096], "ratio_hi": [0.9, 1.2, 0.95, 0.9, 0.8]})
    assert overtakes_from(d) == 256          # faster at 16, then not at 64: the run from 256 on counts
    assert math.isnan(overtakes_from(d.assign(ratio_hi=[0.5, 0.5, 0.5, 0.5, 1.01])))  # not at the longest
    assert overtakes_from(d.assign(ratio_hi=0.5)) == 16


def store(tmp, mingru_ms, threads=(1, 2), rounds=3):
    """lstm (oneDNN) 0.1 ms/step, gru asked for auto and native (both the native loop) 0.2
    ms/step, minGRU's chunked path `mingru_ms(T)`; T 16..4096; every point in `rounds` rounds
    and at each thread count."""
    for n in threads:
        for T in (16, 64, 256, 1024, 4096):
            sides = [("lstm", "onednn", {"measure_backend": "auto"}, 0.1 * T),
                     ("gru", "native", {"measure_backend": "auto"}, 0.2 * T),
                     ("gru", "native", {"measure_backend": "native"}, 0.2 * T),
                     ("mingru", "native", {"measure_backend": "auto", "path": "chunked"}, mingru_ms(T))]
            for rnd in range(1, rounds + 1):
                for cell, backend, extra, ms in sides:
                    point = _config(cell, T, "throughput", dtype="float32", measure_tf32=False, measure_round=rnd,
                                    threads_requested=n, **extra)
                    rows = [{"measure": "throughput", "phase": ph, "rep": r, "time_ms": ms * f * (1 + 0.01 * r),
                             "flops": 1e6, "peak_mem_bytes": 1000 * T, "rel_iqr": 0.01, "noisy": False,
                             "calib_flops_per_s": 1e10, "calib_n": 512, "tokens": 4 * T, "attempt": 1, "params": 100}
                            for r in range(5) for ph, f in (("forward", 0.3), ("backward", 0.6), ("step", 1.0))]
                    _write(tmp, point, rows, backend=backend, threads=n)
    return tmp


def report(tmp_path, mingru_ms):
    from analysis.report.__main__ import main
    out = tmp_path / "r"
    assert main([str(store(tmp_path / "s", mingru_ms)), "--out", str(out)]) == 0
    lengths = pd.read_csv(out / "tables" / "crossover_lengths.csv")
    verdicts = pd.read_csv(out / "tables" / "verdicts.csv").set_index("claim")
    return lengths.set_index(["threads", "comparison"]), verdicts


def test_lengths_per_thread_count_against_the_fastest_lstm_and_gru(tmp_path):
    """minGRU's path costs 5 ms + 0.05 ms/step: slower than the LSTM (0.1 ms/step) up to T=64,
    faster from T=256 on; faster than the GRU (0.2 ms/step) from T=64 on. The GRU asked for
    `native` is the same kernel as its default and is not a second reference."""
    lengths, verdicts = report(tmp_path, lambda T: 5 + 0.05 * T)
    for n in (1, 2):
        assert lengths.at[(n, "mingru chunked / lstm onednn"), "faster_from"] == 256
        assert lengths.at[(n, "mingru chunked / gru native"), "faster_from"] == 64
    row = next(lengths.reset_index().itertuples())
    assert "faster" in length_text(row)
    assert verdicts.at["fastest", "verdict"] == "supported"
    assert "1 thread" in verdicts.at["fastest", "scope"] and "2 threads" in verdicts.at["fastest", "scope"]


def reduced(tmp_path, mingru_ms):
    """The lengths and the `fastest` verdict as the report computes them, without drawing it."""
    from analysis.load import load_store, of
    from analysis.reduce.crossover import all_evidence, crossover
    from analysis.reduce.throughput import points
    from analysis.report.rules import judge_below_one
    groups = crossover(points(of(load_store(store(tmp_path / "s", mingru_ms)), "throughput")))
    lengths = pd.concat([g[4] for g in groups], ignore_index=True)
    return lengths.set_index(["threads", "comparison"]), judge_below_one(all_evidence(groups)["fastest"])


def test_the_verdict_flips_when_the_fused_lstm_is_faster_at_the_longest_length(tmp_path):
    lengths, verdict = reduced(tmp_path, lambda T: 0.15 * T)
    assert math.isnan(lengths.at[(1, "mingru chunked / lstm onednn"), "faster_from"])
    assert lengths.at[(1, "mingru chunked / lstm onednn"), "slower_from"] == 16
    assert verdict.verdict == "contradicted"


def test_a_tie_is_neither_faster(tmp_path):
    lengths, verdict = reduced(tmp_path, lambda T: 0.1 * T)
    row = lengths.reset_index().set_index("comparison").loc["mingru chunked / lstm onednn"].iloc[0]
    assert math.isnan(row["faster_from"]) and math.isnan(row["slower_from"])
    assert verdict.verdict == "mixed"  # a tie is neither for the claim nor against it
    assert "cannot tell" in verdict.scope


def test_a_store_of_diagonal_paths_alone_reports_without_a_crossover_against_lstm(tmp_path):
    """`make bench EXP=throughput_crossover_paths`: no torch.nn cell to overtake; the report is
    written, with the paths against their loop and no lengths table."""
    from analysis.report.__main__ import main
    s = tmp_path / "s"
    for T in (16, 64, 256):
        for path, ms in (("chunked", 0.1 * T), ("cpp", 0.05 * T)):
            point = _config("mingru", T, "throughput", dtype="float32", measure_tf32=False, measure_backend="auto",
                            path=path)
            rows = [{"measure": "throughput", "phase": ph, "rep": r, "time_ms": ms * f, "flops": 1e6,
                     "peak_mem_bytes": 1000 * T, "rel_iqr": 0.01, "noisy": False, "calib_flops_per_s": 1e10,
                     "calib_n": 512, "tokens": 4 * T, "attempt": 1, "params": 100}
                    for r in range(5) for ph, f in (("forward", 0.3), ("backward", 0.6), ("step", 1.0))]
            _write(s, point, rows)
    assert main([str(s), "--out", str(tmp_path / "r")]) == 0
    assert not (tmp_path / "r" / "tables" / "crossover_lengths.csv").exists()


def test_the_fastest_path_is_judged_with_intervals_simultaneous_over_the_paths_it_was_picked_from():
    """minGRU's best path 0.90x [0.82, 0.99] over 5 rounds: alone, it is faster; picked as the best
    of six on the same rounds, its interval made simultaneous over the six spans 1, and the claim
    cannot tell. A path wholly below 1 even so (0.5x) holds again; all six above 1 contradicts."""
    from analysis.reduce.crossover import evidence
    from analysis.report.rules import judge_below_one

    def judged(rows):
        r = pd.DataFrame([{"threads": 1, "comparison": f"mingru {p} / lstm onednn", "seq_len": 4096, "ratio": x,
                           "ratio_lo": lo, "ratio_hi": hi, "interval_covers": "rounds", "rounds": 5,
                           "memory_ratio": 1.0} for p, (x, lo, hi) in rows.items()])
        return judge_below_one(evidence(r, {"lstm": "lstm onednn"})["fastest"])

    others = {p: (1.2, 1.1, 1.3) for p in ("loop", "scan", "fused_loop", "cpp", "compiled")}
    assert judged({"chunked": (0.9, 0.82, 0.99)}).verdict == "supported"
    v = judged({"chunked": (0.9, 0.82, 0.99), **others})
    assert v.verdict == "mixed" and "simultaneous over its 6 paths" in v.figure
    assert judged({"chunked": (0.5, 0.45, 0.55), **others}).verdict == "supported"
    assert judged({"chunked": (1.15, 1.12, 1.18), **others}).verdict == "contradicted"
    # the holding path with the lowest upper bound speaks, not the lowest point ratio
    v = judged({"compiled": (0.80, 0.40, 1.60), "cpp": (0.85, 0.83, 0.87)})
    assert v.verdict == "supported" and v.figure.startswith("0.85x")


def test_the_family_is_the_cells_paths_against_the_lstm_at_its_longest_length_only():
    """Rows against the GRU, against the cell's own loop, at a shorter length, of another cell or
    thread count, or without an interval are not among the k paths the interval is widened over."""
    from analysis.reduce.crossover import evidence

    def row(comparison, seq_len=4096, x=(0.9, 0.85, 0.95), threads=1):
        return {"threads": threads, "comparison": comparison, "seq_len": seq_len, "ratio": x[0], "ratio_lo": x[1],
                "ratio_hi": x[2], "interval_covers": "rounds", "rounds": 5, "memory_ratio": 1.0}
    r = pd.DataFrame([row("mingru chunked / lstm onednn"), row("mingru cpp / lstm onednn"),
                      row("mingru scan / gru native"), row("mingru chunked / mingru loop"),
                      row("mingru compiled / lstm onednn", seq_len=1024), row("minlstm cpp / lstm onednn"),
                      row("mingru compiled / lstm onednn", threads=2),
                      row("mingru scan / lstm onednn", x=(math.nan, math.nan, math.nan))])
    fastest = evidence(r, {"lstm": "lstm onednn", "gru": "gru native"})["fastest"].set_index("scope")
    assert fastest["paths"].to_dict() == {"mingru chunked at T=4096, 1 thread": 2,
                                          "minlstm cpp at T=4096, 1 thread": 1,
                                          "mingru compiled at T=4096, 2 threads": 1}
