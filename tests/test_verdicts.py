"""Every claim's verdict comes from its stated rule and flips when its evidence flips
(analysis/report/verdicts.py); the sections hand over the evidence (here, synthetic stores)."""
import math

import pandas as pd
import pytest

from analysis.report.rules import Finding, combine
from analysis.report.verdicts import BY_KEY, CLAIMS, judge_all
from tests.synthetic_learning import write_state_study


def decay_rows(lstm, rnn, scope="T=200"):
    """Two cells' decay intervals (log10 per step; closer to 0 reaches further)."""
    return pd.DataFrame([{"scope": scope, "cell_role": "lstm", "name": "lstm", "decay_lo": lstm[0], "decay_hi": lstm[1],
                          "half_life": "a"},
                         {"scope": scope, "cell_role": "rnn", "name": "rnn", "decay_lo": rnn[0], "decay_hi": rnn[1],
                          "half_life": "b"}])


@pytest.mark.parametrize("key", ["reach", "init"])
def test_decay_claims_flip_with_the_intervals(key):
    judge = BY_KEY[key].judge
    assert judge(decay_rows((-0.1, -0.09), (-0.3, -0.2))).verdict == "supported"
    assert judge(decay_rows((-0.3, -0.2), (-0.1, -0.09))).verdict == "contradicted"
    overlap = judge(decay_rows((-0.2, -0.1), (-0.15, -0.05)))  # cannot tell: neither for nor against
    assert overlap.verdict == "mixed" and "cannot tell" in overlap.scope and "holds in 0 of 1" in overlap.scope
    both = pd.concat([decay_rows((-0.1, -0.09), (-0.3, -0.2), "T=25"), decay_rows((-0.3, -0.2), (-0.1, -0.09), "T=800")])
    v = judge(both)
    assert v.verdict == "mixed" and "holds in 1 of 2: T=25" in v.scope and "Does not hold in: T=800" in v.scope


def solved_rows(lstm, rnn, budget_ok=True):
    from analysis.reduce.fits import wilson
    return pd.DataFrame([{"scope": "adding, lag 200", "cell_role": c, "name": c, "solved": k, "seeds": 10,
                          "lo": wilson(k, 10)[0], "hi": wilson(k, 10)[1], "budget_ok": budget_ok}
                         for c, k in (("lstm", lstm), ("rnn", rnn))])


@pytest.mark.parametrize("key", ["long_lag", "fair"])
def test_solved_claims_need_intervals_that_do_not_overlap(key):
    judge = BY_KEY[key].judge
    assert judge(solved_rows(10, 0)).verdict == "supported"
    assert judge(solved_rows(10, 10)).verdict == "contradicted"  # the RNN's interval wholly above 1/2
    assert judge(solved_rows(0, 0)).verdict == "contradicted"    # the LSTM's wholly below 1/2
    for lstm, rnn in ((7, 3), (10, 7)):  # 0.70 [0.40, 0.89] vs 0.30 [0.11, 0.60]; 1.00 [0.72, 1.00] vs 0.70 [0.40, 0.89]
        v = judge(solved_rows(lstm, rnn))
        assert v.verdict == "mixed" and "cannot tell in: adding, lag 200 (the intervals overlap)" in v.scope
    assert "budget shorter" in judge(solved_rows(10, 0, budget_ok=False)).figure


def ratio_rows(*ratios, covers="rounds"):
    return pd.DataFrame([{"scope": f"config {i}", "ratio": r, "ratio_lo": lo, "ratio_hi": hi,
                          "interval_covers": covers, "headline": i == 0} for i, (r, lo, hi) in enumerate(ratios)])


def test_ratio_claims_flip_at_their_thresholds():
    assert BY_KEY["slower"].judge(ratio_rows((3.0, 2.8, 3.2))).verdict == "supported"
    assert BY_KEY["slower"].judge(ratio_rows((0.9, 0.85, 0.95))).verdict == "contradicted"
    straddles = BY_KEY["slower"].judge(ratio_rows((1.0, 0.95, 1.05)))  # neither for nor against
    assert straddles.verdict == "mixed" and "straddles the threshold" in straddles.scope
    assert BY_KEY["slower"].judge(ratio_rows((3.0, 2.8, 3.2), (0.98, 0.9, 1.02))).verdict == "mixed"
    assert BY_KEY["bidir"].judge(ratio_rows((2.0, 1.9, 2.1))).verdict == "supported"
    assert BY_KEY["bidir"].judge(ratio_rows((3.7, 3.5, 3.9))).verdict == "contradicted"
    assert BY_KEY["subnormal"].judge(ratio_rows((1.05, 1.02, 1.08))).verdict == "contradicted"
    assert BY_KEY["subnormal"].judge(ratio_rows((15.0, 14.0, 16.0))).verdict == "supported"
    assert BY_KEY["scan"].judge(ratio_rows((2.0, 1.9, 2.2))).verdict == "contradicted"  # scan / fused > 1
    assert BY_KEY["fastest"].judge(ratio_rows((0.5, 0.45, 0.55))).verdict == "supported"
    assert "over interleaved rounds" in BY_KEY["slower"].judge(ratio_rows((3.0, 2.8, 3.2))).figure
    one_run = BY_KEY["slower"].judge(ratio_rows((3.0, 2.8, 3.2), covers="repetitions")).figure
    assert "one run's repetitions only" in one_run


def test_gates_is_a_consistency_check_with_a_threshold():
    assert BY_KEY["gates"].by_construction
    assert BY_KEY["gates"].judge({"max_rel_diff": 6e-14}).verdict == "supported"
    assert BY_KEY["gates"].judge({"max_rel_diff": 1e-3}).verdict == "contradicted"
    assert BY_KEY["gates"].judge({"max_rel_diff": None}).verdict == "not measured"


def test_no_evidence_is_not_measured_and_every_claim_has_a_rule():
    verdicts = judge_all({})
    assert {v.verdict for v in verdicts.values()} == {"not measured"}
    for c in CLAIMS:
        assert c.rule and c.statement and c.study and c.preset
    assert combine([Finding("a", True, "x"), Finding("b", False, "y")]).verdict == "mixed"


@pytest.mark.parametrize("flip,s3,signed,state", [(False, False, "supported", "supported"),
                                                  (True, False, "contradicted", "supported"),
                                                  (False, True, "supported", "contradicted")])
def test_state_claims_from_a_store(tmp_path, flip, s3, signed, state):
    """The signed-against-unsigned control flips when the unsigned cells learn parity too; the S3
    claim is contradicted when the signed cell tracks S3 to 256 in most seeds too."""
    from analysis.report.__main__ import main
    store = write_state_study(tmp_path / "s", unsigned_solves_parity=flip, signed_tracks_s3=s3)
    out = tmp_path / "r"
    assert main([str(store), "--out", str(out)]) == 0
    v = pd.read_csv(out / "tables" / "verdicts.csv").set_index("claim")
    assert v.at["signed", "verdict"] == signed and v.at["state", "verdict"] == state
    h = pd.read_csv(out / "tables" / "state_horizons.csv").set_index(["task", "cell"])
    assert h.at[("parity_final", "lstm"), "horizon_median"] == 192  # first length below 0.9
    assert h.at[("word_s3", "mingru_signed"), "horizon_median"] == (math.inf if s3 else 48)
    assert h.at[("word_s3", "lstm"), "tracking"] == 10
    assert (out / "figures" / "state_tracking_lengths.png").exists()
    assert "quoted, not measured here" in (out / "report.md").read_text()
