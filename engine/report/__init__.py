"""A study as people read it: the Markdown summary with its figures and trials.csv, and the number, duration and
table formatting that the screens share."""

from engine.report.formatting import clock_text, eta_seconds, number_text, param_text, params_text, seconds_text, table
from engine.report.markdown import export_report, history_chart, render_report, write_report

__all__ = [
    "clock_text", "eta_seconds", "export_report", "history_chart", "number_text", "param_text", "params_text",
    "render_report", "seconds_text", "table", "write_report",
]
