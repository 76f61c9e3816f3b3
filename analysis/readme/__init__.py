"""`make docs`: the README's and docs/results.md's generated blocks (blocks.py) from the committed
reference stores (docs.py)."""
