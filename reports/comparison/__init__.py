"""Energy-efficiency comparison reports: FPGA designs (simulated) against GPUs (measured or modelled).

``llmaccel report SPEC.yaml --out DIR`` writes ``report.html`` (self-contained: every plot inline as
base64 PNG, no script, nothing fetched) and its Markdown twin ``report.md`` (plots beside it in ``img/``).
"""
from llmaccel.reports.comparison.collect import ReportSpec, collect, load_report_spec
from llmaccel.reports.comparison.render import write_report

__all__ = ["ReportSpec", "load_report_spec", "collect", "write_report"]
