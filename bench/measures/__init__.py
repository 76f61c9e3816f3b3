"""The measure registry: `measure` name -> function(Point) -> list of row dicts.

Measures return plain rows; they never print tables or write files.
"""
from bench.measures import gradients, long_range, throughput

MEASURES = {
    "gradients": gradients.measure,
    "throughput": throughput.measure,
    "long_range": long_range.measure,
}
