"""The initialisation study in a store that may hold several: half-life by scheme and the decay
against the recurrent gain. It reads only its own study's rows (a reference store mixes them;
docs/architecture.md, "Reference results")."""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from analysis.reduce.gradients import defaults


def initialisation(table: pd.DataFrame, report) -> tuple:
    """Half-life by initialisation scheme per cell, and decay against the recurrent gain of the
    orthogonal RNN: is LSTM's reach the gates', or PyTorch's default init's? Read at the
    (seq_len, hidden size) where the most schemes were measured; rows that differ only in the
    requested threads (float64 profiles: identical) are counted once."""
    t = defaults(table)
    t = t[(t["condition"] == "init") & (t["num_layers"] == 1) & ~t["bidirectional"].astype(bool)
          & (t["forget_bias"].isna() | (t["forget_bias"] == 0))]  # the ladder is its own study
    if t["init"].nunique() < 2:
        return "", {}
    T, H = t.groupby(["seq_len", "hidden_size"])["init"].nunique().idxmax()
    t = t[(t["seq_len"] == T) & (t["hidden_size"] == H)]
    t = t.drop_duplicates([k for k in ("cell", "init", "nonlinearity", "gain", "forget_bias", "chrono_tmax") if k in t])
    md = []
    gain = t[(t["init"] == "orthogonal") & (t["cell"] == "rnn")]
    if gain["gain"].nunique() > 2:
        fig, ax = plt.subplots(figsize=(6, 4))
        for nl, d in gain.sort_values("gain").groupby("nonlinearity"):
            ax.errorbar(d["gain"], d["decay_per_step"], fmt="o-", capsize=3, label=f"measured, {nl}",
                        yerr=[d["decay_per_step"] - d["decay_lo"], d["decay_hi"] - d["decay_per_step"]])
        g = np.linspace(gain["gain"].min(), gain["gain"].max(), 50)
        ax.plot(g, np.log10(g), "k--", lw=1, label="log10(gain): linear regime, by construction")
        ax.axhline(0, color="k", lw=0.8)
        ax.set(xlabel="recurrent gain (W_hh = gain x orthogonal)", ylabel="decay per step (log10); > 0 grows")
        ax.legend(fontsize="small")
        T = int(gain["seq_len"].max())
        cross = gain[gain["decay_lo"] > 0].groupby("nonlinearity")["gain"].min()
        ax.set_title("Orthogonal RNN: gradients vanish at small gain and explode at large" +
                     ("\n(whole interval grows from gain " + ", ".join(f"{v:g} {nl}" for nl, v in cross.items()) + ")"
                      if len(cross) else ""), fontsize="medium")
        md.append(report.figure("decay_vs_gain", fig, f"orthogonal RNN, T={T}: decay per step against "
                                "the recurrent gain with 95% intervals; below 0 gradients vanish, above "
                                "they explode. Smallest gain whose whole interval grows: " +
                                (", ".join(f"{nl} {v:g}" for nl, v in cross.items()) or "none")))
    at_one = t[t["gain"] == 1.0]
    cols = ["cell", "init", "nonlinearity", "seq_len", "seeds", "half_life", "decay_per_step",
            "decay_lo", "decay_hi"]
    by_init = at_one[cols].sort_values(["cell", "init", "nonlinearity"])
    md.append(report.table("half_life_by_init", by_init, "half-life at initialisation by scheme "
                           "(gain 1), steps, 95% interval; identity + relu on rnn is the IRNN"))
    best = at_one.loc[at_one.groupby("cell")["decay_per_step"].idxmax()]
    best = best[best["cell"].isin(["lstm", "rnn"])]
    rows = [{"scope": f"best init at T={int(r.seq_len)}", "cell_role": r.cell,
             "name": f"{r.cell} ({r.init}{'+' + r.nonlinearity if r.cell == 'rnn' else ''})",
             "decay_lo": r.decay_lo, "decay_hi": r.decay_hi, "half_life": r.half_life}
            for r in best.itertuples()]
    return "\n".join(md), ({"init": pd.DataFrame(rows)} if len(rows) == 2 else {})
