"""`python -m bench [hydra overrides]` (see bench.cli)."""
from bench.cli import main

main()
