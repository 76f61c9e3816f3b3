"""`python -m bench [hydra overrides]` (see bench.cli)."""
from bench.run.cli import main

main()
