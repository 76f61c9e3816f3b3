"""`python -m bench [hydra overrides]` (see bench.run.cli); `--help` answers without starting Hydra."""
import sys

if {"-h", "--help"} & set(sys.argv[1:]):
    from bench.run.help import main
else:
    from bench.run.cli import main

main()
