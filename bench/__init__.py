"""rnn-bench: config -> model -> measure -> records -> store (see DESIGN.md)."""
