"""Report sections, in report order. Each module: build(df, report) -> SectionResult | None."""
from analysis.report.sections import cpu_cost, gradients, long_range, modern, selection, state, throughput

SECTIONS = [gradients, long_range, state, throughput, modern, selection, cpu_cost]
