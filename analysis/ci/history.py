"""`python -m analysis.history [DIR] --out FIG`: each CI metric across commits, as `asv publish`.

Reads the history store that `make ci-bench` and `make ci-counts` append to (results/ci/history/,
one parquet file per run, written by `analysis.compare --history` and `analysis.counts --history`)
and draws every timing metric's and every cell's instruction count's change against
the run's commit, oldest first: A/B runs with their 95% interval, stored-baseline runs as points,
the threshold as a shaded band. It also prints, per run, the commit, the mode and the verdicts.
"""
from __future__ import annotations

import argparse
import datetime as dt
import sys
from pathlib import Path
from typing import List, Optional

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

from analysis.load import StoreError

# The metrics drawn: the timings, and beside them the instruction counts of `make ci-counts`.
TIMING = ("step time ", "step/matmul ", "lstm/rnn", "gru/rnn", "bi/uni", "instructions ")


def load_history(directory: Path) -> pd.DataFrame:
    files = sorted(Path(directory).glob("*.parquet"))
    if not files:
        raise StoreError(f"no history in {directory}: run `make ci-bench` (it appends there)")
    df = pd.concat([pd.read_parquet(f) for f in files], ignore_index=True)
    df["run"] = df["timestamp"] + " " + df["head_sha"].astype(str).str[:12]
    for col in ("change", "change_lo", "change_hi", "threshold"):
        df[col] = pd.to_numeric(df[col], errors="coerce") if col in df else np.nan
    return df.sort_values("timestamp")


def summary(df: pd.DataFrame) -> pd.DataFrame:
    """One row per run: commit, mode, counts of regressions, inconclusive and judged metrics."""
    v = df["verdict"].astype(str)
    df = df.assign(regression=v.str.startswith("REGRESSION"),
                   inconclusive=v.str.startswith(("inconclusive", "skipped")))
    return (df.groupby(["timestamp", "head_sha", "mode", "base_ref"], sort=True)
              .agg(metrics=("metric", "size"), regressions=("regression", "sum"),
                   inconclusive=("inconclusive", "sum")).reset_index())


def draw(df: pd.DataFrame, out: Path) -> Path:
    matplotlib.use("Agg")  # a file backend, set when drawing rather than at import
    t = df[df["metric"].str.startswith(TIMING) & df["change"].notna()].copy()
    if t.empty:
        raise StoreError("the history holds no timing metrics to draw")
    runs = list(dict.fromkeys(t["run"]))
    t["x"] = t["run"].map({r: i for i, r in enumerate(runs)})
    t["mode"] = t["mode"].astype(str)
    grid = sns.FacetGrid(t, col="metric", col_wrap=4, height=2.2, aspect=1.5, sharey=False)

    def panel(data: pd.DataFrame, **_) -> None:
        ax = plt.gca()
        thr = float(data["threshold"].dropna().iloc[0]) if data["threshold"].notna().any() else 0.05
        ax.axhspan(-thr, thr, color="0.9", zorder=0)
        ax.axhline(0, color="0.6", lw=0.8)
        for mode, d in data.groupby("mode"):
            lo = (d["change"] - d["change_lo"]).clip(lower=0).fillna(0)
            hi = (d["change_hi"] - d["change"]).clip(lower=0).fillna(0)
            ax.errorbar(d["x"], d["change"], yerr=[lo, hi], fmt="o-" if mode == "ab" else "s--",
                        ms=3, lw=1, capsize=2, label=mode)
    grid.map_dataframe(panel)
    grid.set_titles("{col_name}", size=7)
    grid.set_axis_labels("run (oldest first)", "change vs base")
    for ax in grid.axes.flat:
        ax.set_xticks(range(len(runs)))
        ax.set_xticklabels([r.split()[-1][:8] for r in runs], rotation=60, fontsize=6)
        ax.yaxis.set_major_formatter(matplotlib.ticker.PercentFormatter(1.0))
    grid.add_legend(title="mode")
    grid.figure.suptitle("CI metrics across commits (grey band: the threshold; bars: 95% interval)", y=1.01)
    out.parent.mkdir(parents=True, exist_ok=True)
    grid.figure.savefig(out, dpi=110, bbox_inches="tight")
    plt.close(grid.figure)
    return out


def append_history(table: pd.DataFrame, history: Path) -> Path:
    """Append one run's per-metric results to the history store (one file per run, keyed by
    the head commit and time; nothing already stored is rewritten)."""
    history = Path(history)
    history.mkdir(parents=True, exist_ok=True)
    t = table.copy()
    stamp = dt.datetime.now(dt.timezone.utc)
    t["timestamp"] = stamp.isoformat(timespec="seconds")
    if "head_sha" not in t:
        from bench.run.records import git_sha  # late: keeps torch out of the history figure's import
        t["head_sha"] = git_sha()
    for col in t.columns:
        if t[col].dtype == object:
            t[col] = t[col].astype(str)
    path = history / f"{stamp:%Y%m%dT%H%M%S}-{t['head_sha'].iloc[0]}.parquet"
    n = 1
    while path.exists():  # two runs of one commit in one second (ci-bench, then ci-counts)
        path, n = path.with_name(f"{stamp:%Y%m%dT%H%M%S}-{t['head_sha'].iloc[0]}-{n}.parquet"), n + 1
    t.to_parquet(path, index=False)
    return path


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m analysis.history", description=__doc__.split("\n")[0])
    parser.add_argument("history", nargs="?", default="results/ci/history")
    parser.add_argument("--out", default="results/ci/history.png")
    args = parser.parse_args(argv)
    try:
        df = load_history(Path(args.history))
        print(summary(df).to_markdown(index=False))
        print(f"figure: {draw(df, Path(args.out))}")
    except StoreError as exc:
        print(f"analysis.history: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
