"""rnn-bench: config -> model -> measure -> records -> store (see docs/architecture.md)."""
