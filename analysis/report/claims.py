"""The claims the scorecard judges, in scorecard order, and where each is measured."""
from __future__ import annotations

# The tutorial's claims, in scorecard order: key -> wording.
CLAIMS = {
    "gates": "The gates and cell state follow the textbook formulas (`ref_lstm` reproduces `nn.LSTM`)",
    "reach": "LSTM gradients reach further back in time than a plain RNN's",
    "init": "...and not only because PyTorch's default init makes the RNN contract (the RNN at its best init)",
    "long_lag": "Long-lag tasks that a plain RNN fails are learnable by an LSTM",
    "fair": "...also against a well-initialised RNN of equal parameter count, each cell's lr chosen on validation",
    "slower": "LSTM trains slower than a plain RNN on the same hardware",
    "bidir": "A bidirectional LSTM doubles parameters and compute",
    "scan": "Cells that train by parallel scan (minGRU, minLSTM, LRU) outrun a fused LSTM at long sequences",
    "state": "LSTM tracks state (running parity) at lengths it never saw; the diagonal cells cannot",
    "selective": "Selective copying: which cells learn it within the same training budget",
    "subnormal": "On a CPU, vanishing gradients cost time: subnormal floats slow a step until flushed",
}


# The reference study (results/reference/<study>, analysis/readme/docs.py) whose report measures each
# claim for the README.
CLAIM_STUDY = {"gates": "classic", "reach": "classic", "init": "classic", "long_lag": "classic",
               "fair": "fair", "slower": "classic", "bidir": "classic", "scan": "modern",
               "state": "modern", "selective": "modern", "subnormal": "cpu_cost"}

# The preset that measures a claim the default suite does not.
MEASURED_BY = {"init": "gradients_init", "fair": "long_range_fair", "scan": "throughput_crossover",
               "state": "modern_tasks", "selective": "modern_tasks", "subnormal": "cpu_cost"}
