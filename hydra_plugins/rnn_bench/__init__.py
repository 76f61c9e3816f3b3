"""rnn-bench's Hydra plugin (Hydra loads sweepers only from the hydra_plugins namespace)."""
