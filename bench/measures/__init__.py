"""The measure registry: `measure` name -> function(Point) -> list of row dicts.

Measures return plain rows; they never print tables or write files. Each module has a VERSION,
bumped when a change moves its numbers: it is part of the point's hash, so a re-run after such a
change measures again instead of reusing stale points (as asv versions its benchmarks).
"""
from bench.measures import gradients, long_range, throughput

MEASURES = {
    "gradients": gradients.measure,
    "throughput": throughput.measure,
    "long_range": long_range.measure,
}
VERSIONS = {
    "gradients": gradients.VERSION,
    "throughput": throughput.VERSION,
    "long_range": long_range.VERSION,
}
