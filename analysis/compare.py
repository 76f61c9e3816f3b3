"""`python -m analysis.compare BASELINE CANDIDATE | --ab DIR`: the CI regression verdict.

Two modes (docs/architecture.md, "Regression tracking"). A/B (`--ab`, after `bench.ab`): head
and base measured in interleaved rounds on the same machine in the same job, judged on paired
rounds (analysis/paired.py, the verdict built in analysis/ab_verdict.py); this is the mode that can tell a 10% slowdown from the machine's
weather. Stored baseline: a candidate store against one recorded earlier (results/baseline), for
machines that cannot build the base; its rules follow. Either prints a markdown verdict table,
also written to --out, and may append it to a history store (--history). Exit 0: no
regression; 1: a regression; 2: unusable input (missing store, nothing in common, another device).

Rules of the stored-baseline mode
- fail closed: a baseline point missing from the candidate, stored with a status other than
  `ok`, or holding a non-finite value is a regression, named by its configuration; so is a
  baseline timing metric that the candidate lacks. Points are keyed by configuration hash.
- gradients (float64 on CPU, deterministic): grad_norm at every position must agree within
  GRAD_RTOL; any drift beyond it is a correctness change.
- timings are never compared raw across runs. Per point, the median step time is divided by
  the same run's calibration matmul (`step/matmul`); across points of one run, the ratios
  LSTM/RNN, GRU/RNN and bidirectional/unidirectional. A slowdown is a regression only when it
  exceeds the threshold AND the points' own spread (sum of their relative IQRs).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import List, Optional, Tuple

import numpy as np
import pandas as pd

from analysis import paired
from analysis.load import StoreError, load_store, of
from analysis.sections.throughput import points, ratios

GRAD_RTOL = 1e-9
# Set from the noise measured on the 2-core CI machine (README, "Regression tracking"): over 5
# consecutive `make ci-bench` runs against one baseline (single-threaded preset), the single-run
# |change| of step/matmul had median 3.5%, 95th percentile 7.5%, max 14%; of the within-run
# ratios, median 3.4%, 95th percentile 10.3%, max 14%. A regression must exceed the threshold,
# the points' own spread, and repeat in a confirmation run; a planted 30% LSTM slowdown clears
# all three.
THRESHOLDS = {"step/matmul": 0.20, "ratio": 0.20}
# A candidate run whose calibration matmul reached under this fraction of the baseline's rate
# shared the machine with other work: its timings are shown but not judged.
CALIB_FLOOR = 0.75
# What decides a timing besides the code (bench.records.environment); printed side by side,
# with what differs marked.
ENV = ["torch_version", "device_name", "threads", "python_version", "cpu_model", "cpu_flags",
       "cpu_capability", "onednn_version", "mkl_version", "cuda_version", "cudnn_version"]
VALUES = {"gradients": "grad_norm", "throughput": "time_ms"}  # what must be finite, per measure


def missing_or_bad(base: pd.DataFrame, cand: pd.DataFrame, key: str = "config_hash", name=None) -> List[dict]:
    """Fail closed: every baseline point must be in the candidate, stored `ok`, with finite
    values. A point that is not is a regression, named by its configuration. `key` pairs the
    points: the configuration hash, or (A/B) the configuration without the versions."""
    out = []
    cand_status = cand.groupby(key)["status"].agg(lambda s: sorted(set(s)))
    finite = pd.Series(True, index=cand_status.index)
    for measure, col in VALUES.items():  # the values each measure's rows carry
        rows = cand[cand["measure"] == measure]
        if col in rows:
            ok = rows.groupby(key)[col].agg(lambda v: bool(np.isfinite(v.astype(float)).all()))
            finite.loc[ok.index] &= ok
    for chash, rows in base.groupby(key):
        what = (name or point_name)(rows.iloc[0])
        if chash not in cand_status.index:
            problem = "missing from the candidate"
        elif cand_status[chash] != ["ok"]:
            bad = cand[(cand[key] == chash) & (cand["status"] != "ok")]
            problem = f"status {', '.join(s for s in cand_status[chash] if s != 'ok')}: {bad['error'].iloc[0]}"[:200]
        elif not finite[chash]:
            problem = "non-finite values"
        else:
            continue
        out.append({"metric": f"point {what}", "baseline": np.nan, "candidate": np.nan, "change": np.nan,
                    "threshold": np.nan, "verdict": f"REGRESSION (point {problem})"})
    return out


def point_name(row: pd.Series) -> str:
    """A point's configuration in one line (its hash tells it apart; the rest is for people)."""
    keys = ["measure", "cell", "measure_backend", "hidden_size", "seq_len", "batch_size", "bidirectional"]
    parts = [f"{k}={row[k]}" for k in keys if k in row and pd.notna(row[k])]
    return f"{row['config_hash']} ({' '.join(parts)})"


def gradient_verdicts(base: pd.DataFrame, cand: pd.DataFrame, key: str = "config_hash", name=None) -> List[dict]:
    keys = [key, "condition", "layer", "t"]
    b, c = of(base, "gradients"), of(cand, "gradients")
    j = b.set_index(keys)["grad_norm"].to_frame("b").join(c.set_index(keys)["grad_norm"].to_frame("c"), how="left")
    out = []
    for chash, g in j.groupby(level=key):
        if g["c"].isna().all():
            continue  # not ok or missing in the candidate: missing_or_bad names it
        rel = ((g["c"] - g["b"]).abs() / g["b"].abs().where(g["b"] != 0, 1.0)).max()
        first = b[b[key] == chash].iloc[0]
        out.append({"metric": f"grad_norm {(name or point_name)(first)} (max rel. diff over t)",
                    "baseline": g["b"].median(), "candidate": g["c"].median(), "change": rel,
                    "threshold": GRAD_RTOL, "verdict": "REGRESSION (correctness)" if not rel <= GRAD_RTOL else "ok"})
    return out


def timing_table(df: pd.DataFrame) -> pd.DataFrame:
    """Run-internal timing metrics: metric name -> value, spread (relative)."""
    tp = of(df, "throughput")
    if tp.empty:
        return pd.DataFrame(columns=["metric", "value", "spread", "kind", "noisy"])
    p = points(tp)
    calib_ms = 2 * tp.groupby("config_hash")["calib_n"].first() ** 3 / tp.groupby("config_hash")["calib_flops_per_s"].first() * 1e3
    p["calib_ms"] = p["config_hash"].map(calib_ms)
    rows = [{"metric": f"step/matmul {r.cell} {r.backend} (backend={r.measure_backend}) H={r.hidden_size} "
                       f"T={r.seq_len} B={r.batch_size}{' bi' if r.bidirectional else ''}",
             "value": r.median_step_ms / r.calib_ms, "spread": r.rel_iqr, "kind": "step/matmul",
             "noisy": bool(r.noisy)}
            for r in p.itertuples()]
    for key, num, den, label in [("cell", "lstm", "rnn", "lstm/rnn"), ("cell", "gru", "rnn", "gru/rnn"),
                                 ("bidirectional", True, False, "bi/uni")]:
        r = ratios(p, key, num, den, label)
        for x in r.itertuples():
            rows.append({"metric": f"{label} {x.cell if key != 'cell' else ''} (backend={x.measure_backend}) "
                                   f"H={x.hidden_size} T={x.seq_len}"
                                   f"{' bi' if key == 'cell' and x.bidirectional else ''}".replace("  ", " "),
                         "value": x.ratio, "spread": x.rel_spread, "kind": "ratio",
                         "noisy": bool(x.num_noisy or x.den_noisy)})
    return pd.DataFrame(rows)


def calibration(df: pd.DataFrame) -> float:
    """The run's median calibration-matmul rate (FLOP/s): the machine's state during the run."""
    tp = of(df, "throughput")
    return float(tp.groupby("config_hash")["calib_flops_per_s"].first().median()) if not tp.empty else np.nan


def timing_verdicts(base: pd.DataFrame, cands: List[pd.DataFrame]) -> List[dict]:
    """A metric regresses only if it slows down beyond its threshold and beyond the points'
    own spread in every candidate run (confirmation runs guard against a transient load).
    A run whose calibration matmul ran under CALIB_FLOOR of the baseline's was measured on a
    loaded (or other) machine: its timings are reported, not judged."""
    b = timing_table(base).set_index("metric")
    per_run = [timing_table(c).set_index("metric") for c in cands]
    state = [calibration(c) / calibration(base) for c in cands]
    out = []
    for metric in b.index:
        if not all(metric in t.index for t in per_run):
            out.append({"metric": metric, "baseline": b.at[metric, "value"], "candidate": np.nan,
                        "change": np.nan, "threshold": THRESHOLDS[b.at[metric, "kind"]],
                        "verdict": "REGRESSION (metric missing from the candidate)"})
            continue
        kind, threshold = b.at[metric, "kind"], THRESHOLDS[b.at[metric, "kind"]]
        runs = []
        for t, machine in zip(per_run, state):
            change = t.at[metric, "value"] / b.at[metric, "value"] - 1
            spread = np.nansum([b.at[metric, "spread"], t.at[metric, "spread"]])
            noisy = bool(b.at[metric, "noisy"] or t.at[metric, "noisy"]) or machine < CALIB_FLOOR
            runs.append((change, change > threshold and change > spread and not noisy, noisy, t.at[metric, "value"]))
        change, _, noisy, value = min(runs)  # the run most favourable to the candidate
        regressed = all(r[1] for r in runs)
        if regressed:
            verdict = "REGRESSION" + (f" ({len(runs)}/{len(runs)} runs)" if len(runs) > 1 else "")
        elif min(state) < CALIB_FLOOR and change > threshold:
            verdict = f"inconclusive: machine loaded (calibration at {min(state):.0%} of baseline)"
        elif noisy and change > threshold:
            verdict = "inconclusive: noisy"
        else:
            verdict = "faster" if change < -threshold else "ok"
        out.append({"metric": metric, "baseline": b.at[metric, "value"], "candidate": value,
                    "change": change, "threshold": threshold, "verdict": verdict})
    return out


def environment(df: pd.DataFrame, keys: List[str] = ENV) -> dict:
    return {k: ", ".join(sorted(df[k].dropna().astype(str).unique())) if k in df else "" for k in keys}


def environment_table(left: pd.DataFrame, right: pd.DataFrame, names: Tuple[str, str],
                      keys: List[str] = ENV) -> List[str]:
    """Markdown rows: each environment key on both sides, `**differs**` where it does."""
    a, b = environment(left, keys), environment(right, keys)
    rows = [f"| | {names[0]} | {names[1]} |", "|---|---|---|"]
    rows += [f"| {k} | {a[k]} | {b[k]} |" + (" **differs**" if a[k] != b[k] else "") for k in keys]
    return rows


def summarise(table: pd.DataFrame, points: str) -> Tuple[int, str]:
    """(exit code, verdict line) of a verdict table."""
    bad = table["verdict"].str.startswith("REGRESSION")
    inconclusive = table["verdict"].str.startswith(("inconclusive", "skipped"))
    judged = f"{int((~inconclusive).sum())} of {len(table)} metrics judged, {int(inconclusive.sum())} inconclusive"
    summary = f"{int(bad.sum())} regression(s); {judged}; {points}" if bad.any() else f"no regression; {judged}; {points}"
    return (1 if bad.any() else 0), f"**Verdict: {summary}.**"


def compare(baseline: Path, candidates: List[Path], on_other_device: str = "refuse") -> Tuple[int, str, pd.DataFrame]:
    """(exit code, markdown, verdict table) against a stored baseline. Extra candidates are
    confirmation runs of the same preset. on_other_device: what to do when the device names
    differ: `refuse` (exit 2), `gradients` (compare gradients only; timings listed as skipped),
    `all`."""
    empty = pd.DataFrame()
    try:
        base = load_store(baseline)
        cands = [load_store(c) for c in candidates]
    except StoreError as exc:
        return 2, f"compare: {exc}", empty
    cand, candidate = cands[0], candidates[0]
    eb, ec = environment(base), environment(cand)
    other_device = eb.get("device_name") != ec.get("device_name")
    if other_device and on_other_device == "refuse":
        return 2, (f"compare: the baseline was measured on {eb.get('device_name')!r} and the candidate on "
                   f"{ec.get('device_name')!r}: refusing to compare across devices (record a baseline "
                   "on this machine with `make baseline`, or pass --on-other-device gradients|all)"), empty
    common = set(base["config_hash"]) & set(cand["config_hash"])
    if not common:
        return 2, (f"compare: no points in common between {baseline} and {candidate} "
                   "(different presets or configurations)"), empty
    rows = missing_or_bad(base, cand) + gradient_verdicts(base, cand)
    if other_device and on_other_device == "gradients":
        rows.append({"metric": "timings", "baseline": np.nan, "candidate": np.nan, "change": np.nan,
                     "threshold": np.nan, "verdict": "skipped: baseline from another device"})
    else:
        rows += timing_verdicts(base, cands)
    table = pd.DataFrame(rows, columns=["metric", "baseline", "candidate", "change", "threshold", "verdict"])
    header = environment_table(base, cand, ("baseline", "candidate"))
    rates = [calibration(base)] + [calibration(c) for c in cands]
    header += ["", "Calibration matmul (median FLOP/s of the run): baseline "
               f"{rates[0] / 1e9:.0f} G, candidate{'s' if len(cands) > 1 else ''} "
               + ", ".join(f"{r / 1e9:.0f} G ({r / rates[0]:.0%})" for r in rates[1:])]
    points = (f"{len(common)} of {base['config_hash'].nunique()} baseline points in the candidate")
    code, verdict = summarise(table, points)
    text = "\n".join(["# rnn-bench regression check (stored baseline)", "", *header, "",
                      table.to_markdown(index=False, floatfmt=".4g"), "", verdict, ""])
    return code, text, table


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m analysis.compare", description=__doc__.split("\n")[0])
    parser.add_argument("stores", nargs="*", metavar="STORE",
                        help="BASELINE CANDIDATE [CONFIRMATION ...]: a candidate run against a stored "
                             "baseline; more than one candidate: confirmation runs, a timing metric "
                             "regresses only if it regresses in every one")
    parser.add_argument("--ab", metavar="DIR", help="judge an A/B run of `python -m bench.ab` instead")
    parser.add_argument("--threshold", type=float, default=paired.THRESHOLD,
                        help="A/B: the relative slowdown an interval must wholly exceed (default %(default)s)")
    parser.add_argument("--out", help="also write the verdict table here (markdown)")
    parser.add_argument("--history", metavar="DIR", help="append this run's per-metric results here "
                        "(`python -m analysis.history DIR` draws them)")
    parser.add_argument("--on-other-device", choices=["refuse", "gradients", "all"], default="refuse",
                        help="when the device names differ: refuse (exit 2, default), compare "
                             "gradients only, or compare all")
    args = parser.parse_args(argv)
    if args.ab and args.stores or not args.ab and len(args.stores) < 2:
        parser.error("give either BASELINE CANDIDATE [CONFIRMATION ...] or --ab DIR")
    if args.ab:
        from analysis.ab_verdict import compare_ab  # late: it builds on this module's rules
        code, text, table = compare_ab(Path(args.ab), args.threshold)
    else:
        code, text, table = compare(Path(args.stores[0]), [Path(c) for c in args.stores[1:]], args.on_other_device)
        table["mode"], table["base_ref"] = "stored baseline", str(args.stores[0])
    print(text, file=sys.stderr if code == 2 else sys.stdout)
    if code != 2:
        if args.out:
            Path(args.out).parent.mkdir(parents=True, exist_ok=True)
            Path(args.out).write_text(text)
        if args.history:
            from analysis.history import append_history
            print(f"history: appended {append_history(table, Path(args.history))}", file=sys.stderr)
    return code


if __name__ == "__main__":
    sys.exit(main())
