"""Gradient profiles reduced: one summary per point (decay, half-life, theory columns), one row per
configuration with its interval, and the readings of particular studies in a mixed store (the
ref_lstm/nn.LSTM parity, the forget-bias ladder). Computed once here; the report sections and the
README blocks only render them."""
from __future__ import annotations

from typing import Optional

import numpy as np
import pandas as pd

from analysis.load import config_keys, group_keys, of
from analysis.reduce.fits import bootstrap_mean, decay_summary, half_life
from bench.cells.registry import family
from bench.config.schema import MODEL_DEFAULTS

KEYS = ["cell", "forget_bias", "num_layers", "bidirectional", "hidden_size", "seq_len"]
POINT_KEYS = ["config_hash", "condition", "loss_kind", "layer"]
THEORY = {"gate_decay_per_step": "gate theory (the slowest unit's rate: the asymptotic decay of a diagonal recurrence)",
          "rnn_heuristic_decay_per_step": "rnn heuristic (spectral radius x mean tanh')",
          "jacobian_decay_per_step": "Jacobian product (consistency check, not a prediction)"}


def profiles(df: pd.DataFrame) -> pd.DataFrame:
    """Gradient rows measured at initialisation by the `gradients` measure (not by long_range)."""
    g = of(df, "gradients")
    if "measure_task" in g.columns:
        g = g[g["measure_task"].isna()]
    return g


def summarize(g: pd.DataFrame) -> pd.DataFrame:
    """One row per point, condition, loss and layer: decay_summary + configuration + theory."""
    g = g.copy()
    g["loss_kind"] = g["loss_kind"].fillna("random_projection") if "loss_kind" in g else "random_projection"
    cfg_cols = config_keys(g)
    rows = []
    for key, p in g.groupby(POINT_KEYS):
        first = p.iloc[0]
        start, end = first.get("measure_fit_start", 0.1), first.get("measure_fit_end", 0.9)
        s = decay_summary(p, 0.1 if pd.isna(start) else start, 0.9 if pd.isna(end) else end)
        rows.append({**dict(zip(POINT_KEYS, key)), **{k: first[k] for k in cfg_cols}, **s,
                     **{k: first.get(k, np.nan) for k in [*THEORY, "mean_gate", "slowest_gate",
                                                          "spectral_radius"]}})
    return pd.DataFrame(rows)


def interval_table(summary: pd.DataFrame, base: list) -> pd.DataFrame:
    """One row per configuration (every varying key but the seed): the decay per step pooled
    over samples and seeds with its bootstrap interval, the half-life (a lower bound where the
    interval reaches zero decay), and the medians of the rest over seeds."""
    keys = group_keys(summary, base)
    out = []
    for k, grp in summary.groupby(keys, dropna=False):
        decay, lo, hi = bootstrap_mean(list(grp["slopes"]))
        out.append({**dict(zip(keys, k)), "seeds": grp["seed"].nunique(), "decay_per_step": decay,
                    "decay_lo": lo, "decay_hi": hi,
                    **half_life(decay, lo, hi, grp["max_distance"].max(), zero=bool(grp["zero_profile"].all())),
                    "horizon_1e6": 6 / -decay if hi < 0 else np.nan, "r2": grp["r2"].median(),
                    "decay_batch_mean": grp["decay_batch_mean"].median(),
                    "ratio_far_near": grp["ratio_far_near"].median(),
                    "fit_window": grp["fit_window"].iloc[0],
                    "underflow_points": grp["underflow_points"].max(),
                    **{t: grp[t].median() for t in THEORY}, "slowest_gate": grp["slowest_gate"].median()})
    return pd.DataFrame(out).sort_values(keys)


def half_life_table(summary: pd.DataFrame) -> pd.DataFrame:
    return interval_table(summary[summary["layer"] == 0], KEYS + ["condition", "loss_kind"])


def parity(g: pd.DataFrame) -> Optional[float]:
    """Largest relative difference of grad_norm between ref_lstm and lstm at the same point: the
    same value of every configuration key but the cell (as strings, so unset keys match)."""
    keys = [k for k in dict.fromkeys(config_keys(g) + ["seed", "condition", "loss_kind", "layer", "t"])
            if k != "cell" and k in g]
    g = g.assign(**{k: g[k].astype(str) for k in keys})
    a = g[g["cell"] == "lstm"].set_index(keys)["grad_norm"]
    b = g[g["cell"] == "ref_lstm"].set_index(keys)["grad_norm"]
    both = a.to_frame("lstm").join(b.to_frame("ref"), how="inner")
    both = both[both["lstm"] > 0]
    if both.empty:
        return None
    return float(((both["ref"] - both["lstm"]).abs() / both["lstm"]).max())


def defaults(table: pd.DataFrame) -> pd.DataFrame:
    """`table` with the model keys that did not vary (and so are not columns) at their defaults."""
    return table.assign(**{k: v for k, v in MODEL_DEFAULTS.items() if k not in table.columns})


def ladder_rows(table: pd.DataFrame) -> pd.DataFrame:
    """The forget-bias ladder: the LSTM family at the default init, one layer, one direction, at
    the hidden size and the seq_lens where the bias was varied (other studies in the store, at
    other sizes and inits, stay out)."""
    t = defaults(table)
    t = t[t["cell"].isin(family("lstm")) & (t["num_layers"] == 1) & ~t["bidirectional"].astype(bool)
          & (t["init"] == "default") & (t["gain"] == 1.0) & (t["condition"] == "init")]
    if t["forget_bias"].nunique() < 2:
        return t
    H = t.groupby("hidden_size")["forget_bias"].nunique().idxmax()
    t = t[t["hidden_size"] == H]
    return t[t.groupby("seq_len")["forget_bias"].transform("nunique") > 1]
