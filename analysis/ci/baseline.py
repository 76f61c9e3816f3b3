"""The stored-baseline mode of the CI check (`python -m analysis.compare BASELINE CANDIDATE`): a
candidate store against one recorded earlier (results/baseline), for machines that cannot build
the base commit.

Rules (beside the shared ones of analysis/ci/rules.py)
- timings are never compared raw across runs. Per point, the median step time is divided by
  the same run's calibration matmul (`step/matmul`); across points of one run, the ratios
  LSTM/RNN, GRU/RNN and bidirectional/unidirectional. A slowdown is a regression only when it
  exceeds the threshold AND the points' own spread (sum of their relative IQRs).
"""
from __future__ import annotations

from pathlib import Path
from typing import List, Tuple

import numpy as np
import pandas as pd

from analysis.ci.manifest import manifest_problems
from analysis.ci.rules import calibration, environment, environment_table, gradient_verdicts, missing_or_bad, summarise
from analysis.load import StoreError, load_store, of, read_records
from analysis.reduce.throughput import points, ratios

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
        threshold = THRESHOLDS[b.at[metric, "kind"]]
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


def version_changes(base: pd.DataFrame, cand: pd.DataFrame) -> List[str]:
    """Per measure in both stores whose version differs: "<measure> v<base> (this commit: v<cand>)"."""
    if "measure_version" not in base or "measure_version" not in cand:
        return []
    b, c = (d.dropna(subset=["measure_version"]).groupby("measure")["measure_version"].max() for d in (base, cand))
    return [f"{m} v{int(b[m])} (this commit: v{int(c[m])})" for m in sorted(set(b.index) & set(c.index))
            if int(b[m]) != int(c[m])]


def compare(baseline: Path, candidates: List[Path], on_other_device: str = "refuse") -> Tuple[int, str, pd.DataFrame]:
    """(exit code, markdown, verdict table) against a stored baseline. Extra candidates are
    confirmation runs of the same preset. on_other_device: what to do when the device names
    differ: `refuse` (exit 2), `gradients` (compare gradients only; timings listed as skipped),
    `all`."""
    empty = pd.DataFrame()
    try:  # fail closed on the baseline: every point it was recorded with, or no verdict
        damaged = manifest_problems(baseline) if Path(baseline).is_dir() else []
        if damaged:  # and every other file that cannot be used, so that one restore fixes all
            damaged += read_records(Path(baseline))[1]
            raise StoreError(f"the baseline {baseline} is not whole: " + "; ".join(damaged)
                             + f"; restore it (`git checkout {baseline}`) or re-record it with `make baseline`")
        base = load_store(baseline, strict=True, hint="`make baseline`")
        cands = [load_store(c, hint="`make ci-bench`") for c in candidates]
    except StoreError as exc:
        return 2, f"compare: {exc}", empty
    cand, candidate = cands[0], candidates[0]
    stale = version_changes(base, cand)
    if stale:
        return 2, (f"compare: the baseline {baseline} was recorded with {', '.join(stale)}, so its points are not "
                   "this commit's (a measure's version names what it measures): re-record it with `make baseline`"), empty
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
