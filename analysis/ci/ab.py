"""The A/B verdict (`python -m analysis.compare --ab DIR`, after `bench.ab`): head's points against
base's from interleaved rounds, fail closed, gradients exact, timings on paired rounds
(analysis/ci/paired.py); the rules it shares with the stored-baseline mode live in analysis/ci/rules.py
(docs/architecture.md, "Regression tracking")."""
from __future__ import annotations

from pathlib import Path
from typing import Dict, Tuple

import numpy as np
import pandas as pd

from analysis.ci import paired
from analysis.ci.rules import ENV, GRAD_RTOL, calibration, environment_table, gradient_verdicts, missing_or_bad, summarise
from analysis.load import StoreError


def compare_ab(directory: Path, threshold: float = paired.THRESHOLD) -> Tuple[int, str, pd.DataFrame]:
    """(exit code, markdown, verdict table) of an interleaved A/B run (`bench.ab`): head's
    points against base's, fail closed, gradients exact, timings on paired rounds."""
    try:
        meta, sides = paired.load_ab(directory)
    except StoreError as exc:
        return 2, f"compare: {exc}", pd.DataFrame()
    base, head = sides["base"], sides["head"]
    rows: Dict[str, dict] = {}
    for k, (b, h) in enumerate(zip(base, head), start=1):
        for row in missing_or_bad(b[b["status"] == "ok"], h, key="pair_key", name=paired.label):
            rows.setdefault(row["metric"], {**row, "rounds": []})["rounds"].append(k)
        for _, r in b[b["status"] != "ok"].drop_duplicates("pair_key").iterrows():
            metric = f"point {paired.label(r)}"
            rows.setdefault(metric, {"metric": metric, "verdict": f"inconclusive: base point {r['status']}",
                                     "rounds": []})["rounds"].append(k)
    out = [{**r, "rounds": len(r["rounds"])} for r in rows.values()]
    out += [{**r, "rounds": 1} for r in gradient_verdicts(base[0], head[0], key="pair_key", name=paired.label)]
    for r in out:
        r["base"], r["head"] = r.pop("baseline", np.nan), r.pop("candidate", np.nan)
    out += [{"metric": r["metric"], "base": r["base_ms"], "head": r["head_ms"], "change": r["ratio"] - 1,
             "interval": f"[{r['ratio_lo'] - 1:+.1%}, {r['ratio_hi'] - 1:+.1%}]", "rounds": r["rounds"],
             "threshold": r["threshold"], "verdict": r["verdict"],
             "change_lo": r["ratio_lo"] - 1, "change_hi": r["ratio_hi"] - 1}
            for r in paired.timing_verdicts(sides, threshold)]
    shown = ["metric", "base", "head", "change", "interval", "rounds", "threshold", "verdict"]
    table = pd.DataFrame(out, columns=shown + ["change_lo", "change_hi"])
    b0, h0 = pd.concat(base), pd.concat(head)
    keys = ["git_sha", *ENV, "measure_version"]
    header = [f"Base: {meta['base']}; head: {meta['head']}. {meta['rounds']} rounds, one worker process per "
              f"side, {'points' if meta.get('interleave') == 'point' else 'runs'} alternating; "
              f"{meta.get('seconds', float('nan')):.0f} s.", "",
              *environment_table(b0, h0, ("base", "head"), keys), ""]
    calib = [(calibration(b), calibration(h)) for b, h in zip(base, head)]
    header.append("Calibration matmul, head/base per round (same machine, same time; a slower torch "
                  "matmul shows here): " + ", ".join(f"{h / b:.2f}" for b, h in calib if b > 0))
    new = paired.new_points(sides)
    if new:
        header += ["", f"New in head, not judged ({len(new)}): " + "; ".join(new)]
    for r in meta.get("refused", []):
        if r["side"] == "head":  # base measured it, head cannot: fail closed
            rows = [{"metric": f"point {r['point']}", "verdict": "REGRESSION (head refused a base point)"}]
            table = pd.concat([table, pd.DataFrame(rows)], ignore_index=True)
    n_base = len(set().union(*(set(b["pair_key"]) for b in base)))
    code, verdict = summarise(table, f"{n_base} base points")
    text = "\n".join(["# rnn-bench regression check (A/B, interleaved)", "", *header, "",
                      table[shown].to_markdown(index=False, floatfmt=".4g"), "",
                      f"Timing: change = head/base - 1 from paired rounds, [95% interval]; a regression "
                      f"is an interval wholly above +{threshold:.0%}. Gradients: float64, relative "
                      f"{GRAD_RTOL:g}.", "", verdict, ""])
    table["mode"], table["base_ref"] = "ab", meta["base"]
    table["head_sha"], table["base_sha"] = h0["git_sha"].iloc[0], b0["git_sha"].iloc[0]
    table["device_name"] = h0["device_name"].dropna().iloc[0] if h0["device_name"].notna().any() else ""
    return code, text, table
