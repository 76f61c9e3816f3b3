"""The crossover reduced (`make reference STUDY=crossover`): each diagonal cell's paths against
its own loop and against the torch.nn cells on their fastest backend, per seq_len and thread
count, each ratio timed side by side (analysis/reduce/ratios.py); the length from which each path
overtakes (or is overtaken); and the claims' evidence. Computed once here; the training-cost
section and docs/results.md read it."""
from __future__ import annotations

import math
from typing import Dict, List, Optional

import pandas as pd

from analysis.reduce.ratios import ratio_rows, simultaneous
from analysis.reduce.throughput import by_config
from bench.cells.recurrence import PATHS

REFERENCES = ("lstm", "gru")   # the torch.nn cells every path is held against
SHAPE = ["seq_len", "hidden_size", "batch_size", "dtype", "device"]
# a crossover is drawn per group of equal keys but seq_len (and the cell, path and backend it compares)
GROUP = ["hidden_size", "batch_size", "dtype", "device", "threads", "input_size", "num_layers", "bidirectional",
         "measure_loss", "measure_flush_denormal", "measure_tf32"]
COLUMNS = ["threads", "comparison", "seq_len", "ratio", "ratio_lo", "ratio_hi", "interval_covers", "rounds",
           "memory_ratio"]
LENGTHS = ["threads", "comparison", "lengths", "faster_from", "slower_from", "longest", "ratio", "ratio_lo", "ratio_hi"]


def labelled(p: pd.DataFrame) -> pd.DataFrame:
    """Points (a row per point and round) with `path` as a label: `<cell> <path>` for a diagonal
    cell, `<cell> <observed backend>` for a torch.nn cell (`lstm onednn`, `gru native`), and
    `diagonal`. A torch.nn cell asked for `native` where its default already runs the native loop
    (the GRU on a CPU) is the same kernel twice: the default's points are kept."""
    p = p.copy()
    diagonal = p["path"].notna()
    p["path"] = p["cell"].astype(str) + " " + p["path"].where(diagonal, p["backend"]).astype(str)
    p["diagonal"] = diagonal
    rnd = p["measure_round"].fillna(0) if "measure_round" in p else pd.Series(0, index=p.index)
    asked = p["measure_backend"] if "measure_backend" in p else pd.Series("auto", index=p.index)
    key = ["path", *SHAPE, *(c for c in (*GROUP, "chunk") if c in p and c not in SHAPE)]
    p = p.assign(_round=rnd, _native=(asked == "native").astype(int)).sort_values("_native", kind="mergesort")
    return p.drop_duplicates([*key, "_round"]).drop(columns=["_round", "_native"]).sort_index()


def references(g: pd.DataFrame) -> Dict[str, str]:
    """Per torch.nn cell, its fastest backend's label: the one with the lowest median step time at
    the longest seq_len that all its backends share."""
    out = {}
    for cell in REFERENCES:
        own = g[~g["diagonal"] & (g["cell"] == cell)]
        if own.empty:
            continue
        med = own.groupby(["path", "seq_len"])["median_step_ms"].median().unstack("path").dropna()
        if not med.empty:
            out[cell] = str(med.iloc[-1].idxmin())
    return out


def ratios(g: pd.DataFrame, refs: Dict[str, str]) -> pd.DataFrame:
    """Each diagonal path over its cell's loop and over each reference, per seq_len: the ratio of
    step times timed side by side with its interval, and the ratio of measured peak memory."""
    mem = by_config(g).groupby(["seq_len", "path"])["peak_mem_bytes"].median()
    order = {name: i for i, name in enumerate(PATHS)}
    rows = []
    for cell in sorted(g.loc[g["diagonal"], "cell"].unique()):
        own = sorted(g.loc[g["diagonal"] & (g["cell"] == cell), "path"].unique(),
                     key=lambda n: order.get(n.split(" ", 1)[1], len(order)))
        pairs = [(n, f"{cell} loop") for n in own if n != f"{cell} loop"] + [(n, r) for r in refs.values() for n in own]
        for num, den in pairs:
            for x in ratio_rows(g, "path", num, den, SHAPE).itertuples():
                rows.append({"threads": int(g["threads"].iloc[0]), "comparison": f"{num} / {den}",
                             "seq_len": int(x.seq_len), "ratio": x.ratio, "ratio_lo": x.ratio_lo,
                             "ratio_hi": x.ratio_hi, "interval_covers": x.interval_covers, "rounds": int(x.rounds),
                             "memory_ratio": float(mem.get((x.seq_len, num), math.nan) / mem.get((x.seq_len, den), math.nan))})
    return pd.DataFrame(rows, columns=COLUMNS)


def overtakes_from(d: pd.DataFrame) -> float:
    """The shortest seq_len from which the first side is faster at every longer seq_len measured
    (its interval wholly below 1 there); NaN where it is not faster at the longest."""
    d = d.sort_values("seq_len")
    faster = (d["ratio_hi"] < 1).to_numpy()
    if not len(d) or not faster[-1]:
        return math.nan
    k = len(faster) - 1
    while k > 0 and faster[k - 1]:
        k -= 1
    return float(d["seq_len"].iloc[k])


def lengths(r: pd.DataFrame) -> pd.DataFrame:
    """Per thread count and comparison against a reference: who overtakes whom from which length.
    `faster_from`: the first side is faster from there on (rule of overtakes_from); `slower_from`:
    the reference is faster from there on; both NaN where neither holds at the longest length."""
    rows = []
    against = r[~r["comparison"].str.contains(" loop$", regex=True)]
    for (threads, comp), d in against.groupby(["threads", "comparison"], sort=True):
        flipped = d.assign(ratio_hi=1 / d["ratio_lo"])
        last = d.sort_values("seq_len").iloc[-1]
        rows.append({"threads": threads, "comparison": comp, "lengths": f"{int(d['seq_len'].min())}-{int(d['seq_len'].max())}",
                     "faster_from": overtakes_from(d), "slower_from": overtakes_from(flipped),
                     "longest": int(last["seq_len"]), "ratio": last["ratio"], "ratio_lo": last["ratio_lo"],
                     "ratio_hi": last["ratio_hi"]})
    return pd.DataFrame(rows, columns=LENGTHS)


def length_text(row) -> str:
    """A lengths row in words."""
    first, second = row.comparison.split(" / ")
    shortest = float(row.lengths.split("-")[0])
    for who, t in ((first, row.faster_from), (second, row.slower_from)):
        if not math.isnan(t):
            return f"{who} is faster at every length measured" if t == shortest else f"{who} is faster from T={t:.0f}"
    return f"neither is faster at T={row.longest} (the interval spans 1)"


def evidence(r: pd.DataFrame, refs: Dict[str, str], name_threads: bool = False) -> Dict[str, pd.DataFrame]:
    """Per thread count and diagonal cell, against the fastest LSTM: its parallel scan (claim
    `scan`) and its fastest path (claim `fastest`), each at the longest seq_len that path was
    measured at; the scope names the thread count where `name_threads` (several were measured)."""
    lstm = refs.get("lstm")
    at = r[r["comparison"].str.endswith(f"/ {lstm}")] if lstm else r.iloc[0:0]
    if at.empty:
        return {}
    at = at.copy()
    at["cell"] = at["comparison"].str.split().str[0]
    at["path"] = at["comparison"].str.split().str[1]
    at = at[at["seq_len"] == at.groupby(["threads", "comparison"])["seq_len"].transform("max")]
    many = name_threads or at["threads"].nunique() > 1
    at["scope"] = [f"{c} {p} at T={t}" + (f", {n} thread{'s' if n > 1 else ''}" if many else "")
                   for c, p, t, n in zip(at["cell"], at["path"], at["seq_len"], at["threads"])]
    cols = ["scope", "ratio", "ratio_lo", "ratio_hi", "interval_covers"]
    longest = at[at["seq_len"] == at.groupby(["threads", "cell"])["seq_len"].transform("max")]
    best = [best_of(g) for _, g in longest.groupby(["threads", "cell"], sort=True)]
    fastest = pd.DataFrame([b for b in best if b is not None], columns=cols + ["paths"])
    return {"scan": at[at["path"] == "scan"][cols], "fastest": fastest[cols + ["paths"]]}


def best_of(g: pd.DataFrame) -> Optional[pd.Series]:
    """The row that speaks for "one of these k paths is faster than the reference" (claim
    `fastest`), chosen and judged on the same rounds: every path's interval is first made
    simultaneous over the k (`simultaneous`, Bonferroni), so that choosing the best of k does not
    shrink the family's 95%. Then: a path whose interval lies wholly below 1, the one with the
    lowest upper bound (the claim holds); else, where every interval lies wholly above 1, the
    lowest ratio (it fails); else the lowest lower bound (the intervals cannot tell). A path with
    no interval (NaN) is not one of the k; None where no path has one."""
    g = g.dropna(subset=["ratio", "ratio_lo", "ratio_hi"])
    if g.empty:
        return None
    wide = [simultaneous(r.ratio, r.ratio_lo, r.ratio_hi, r.rounds, len(g)) if r.interval_covers == "rounds"
            else (r.ratio_lo, r.ratio_hi) for r in g.itertuples()]
    g = g.assign(ratio_lo=[w[0] for w in wide], ratio_hi=[w[1] for w in wide], paths=len(g))
    below = g[g["ratio_hi"] < 1]
    if not below.empty:
        return below.loc[below["ratio_hi"].idxmin()]
    if (g["ratio_lo"] > 1).all():
        return g.loc[g["ratio"].idxmin()]
    return g.loc[g["ratio_lo"].idxmin()]


def crossover(p: pd.DataFrame) -> List[tuple]:
    """Per group (hidden, batch, dtype, device, threads) with a diagonal cell at two lengths or
    more: (group key, labelled points, references, ratios, lengths), the group with the most
    lengths first."""
    if "path" not in p or p["path"].isna().all():
        return []
    p = labelled(p)
    out = []
    for k, g in p.groupby([c for c in GROUP if c in p], dropna=False):
        if g["seq_len"].nunique() < 2 or not g["diagonal"].any():
            continue
        refs = references(g)
        r = ratios(g, refs)
        out.append((k, g, refs, r, lengths(r)))
    return sorted(out, key=lambda o: (-o[1]["seq_len"].nunique(), int(o[1]["threads"].iloc[0])))


def all_evidence(groups: List[tuple]) -> Dict[str, pd.DataFrame]:
    """The claims' evidence (`evidence`) over every group `crossover` returns, one frame per claim."""
    ev = [evidence(r, refs, len(groups) > 1) for _, _, refs, r, _ in groups]
    return {c: pd.concat([e[c] for e in ev if c in e], ignore_index=True) for c in ("scan", "fastest")
            if any(c in e for e in ev)}
