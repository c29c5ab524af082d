"""A study as people read it: the Markdown summary with its figures and trials.csv, and the number, duration and
table formatting that the screens share; studies compared side by side."""

from engine.report.compare import StudyColumn, compare_rows, compare_text, read_columns, study_column
from engine.report.compare_export import best_so_far_curves, render_compare, write_compare
from engine.report.formatting import clock_text, eta_seconds, number_text, param_text, params_text, seconds_text, table
from engine.report.markdown import export_report, history_chart, render_report, write_report

__all__ = [
    "StudyColumn", "best_so_far_curves", "clock_text", "compare_rows", "compare_text", "eta_seconds",
    "export_report", "history_chart", "number_text", "param_text", "params_text", "read_columns", "render_compare",
    "render_report", "seconds_text", "study_column", "table", "write_compare", "write_report",
]
