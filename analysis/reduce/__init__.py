"""Reductions of the store shared by the report sections, the README blocks, the nested selection
and the CI gate: computed once, here."""
