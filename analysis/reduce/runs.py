"""One row per training run of the `long_range` measure: the reduction that the long-lag and
state-tracking sections, the nested selection and the verdicts share (computed once here)."""
from __future__ import annotations

import numpy as np
import pandas as pd

from analysis.load import config_keys

# A run whose loss stays finite but astronomically large, or whose gradient norm is infinite, at its
# last evaluation has blown up as surely as one whose loss went non-finite (which the measure flags):
# it is counted as diverged from the start of that final stretch. A spike it recovers from is not.
BLOWN_UP = 1e6  # x the task's baseline loss


def runs(lr: pd.DataFrame) -> pd.DataFrame:
    """`long_range` rows (one per evaluation) -> one row per run (config_hash): its configuration,
    final test and validation loss, whether and when it solved (first evaluation with
    `solved`), its budget (`measure_steps`, or the last step), whether it diverged and where,
    and the training dynamics. `steps_to_solve` is NaN for a run that did not solve: censored
    at its last evaluation (`steps`)."""
    out = []
    for chash, p in lr.sort_values("step").groupby("config_hash"):
        solved = p[p["solved"].astype(bool)]
        last = p.iloc[-1]
        diverged = bool(p["diverged"].fillna(False).astype(bool).any()) if "diverged" in p else False
        blown_from = blown_up_from(p)
        out.append({"config_hash": chash, "task": last["task"], **{k: last[k] for k in config_keys(p)},
                    "final_test_loss": last["test_loss"], "baseline_loss": last["baseline_loss"],
                    "solved": not solved.empty, "steps": int(last["step"]),
                    "budget": int(last["measure_steps"]) if "measure_steps" in p and pd.notna(last["measure_steps"]) else int(last["step"]),
                    "steps_to_solve": solved["step"].iloc[0] if not solved.empty else np.nan,
                    "seconds_to_solve": solved["elapsed_s"].iloc[0] if not solved.empty else np.nan,
                    "train_seconds": last["elapsed_s"], "diverged": diverged or not np.isnan(blown_from),
                    "diverged_step": last["diverged_step"] if diverged and "diverged_step" in p else blown_from,
                    "blown_up": not diverged and not np.isnan(blown_from),
                    "final_test_acc": last["test_acc"] if "test_acc" in p else np.nan,
                    **dynamics(p)})
    return pd.DataFrame(out)


def blown_up_from(p: pd.DataFrame) -> float:
    """The first evaluation step of the stretch, ending at the run's last evaluation, where the
    test loss exceeds BLOWN_UP x the baseline or the gradient norm is infinite; NaN where the last
    evaluation is not blown up (p: one run's evaluations, by step)."""
    grad = p["grad_norm_preclip"] if "grad_norm_preclip" in p else pd.Series(np.nan, index=p.index)
    blown = ((p["test_loss"] > BLOWN_UP * p["baseline_loss"]) | np.isinf(grad.astype(float))).to_numpy()
    if not len(blown) or not blown[-1]:
        return np.nan
    start = len(blown) - np.argmin(blown[::-1]) if not blown.all() else 0
    return float(p["step"].iloc[start])


def dynamics(p: pd.DataFrame) -> dict:
    """A run's validation loss and training dynamics (records of measure version >= 3)."""
    col = lambda c: p[c] if c in p else pd.Series(np.nan, index=p.index)
    return {"final_val_loss": col("val_loss").iloc[-1], "clipped_fraction": col("clipped_fraction").mean(),
            "grad_norm_preclip": col("grad_norm_preclip").median(),
            "gate_open_fraction": col("gate_open_fraction").iloc[-1],
            "gate_shut_fraction": col("gate_shut_fraction").iloc[-1]}
