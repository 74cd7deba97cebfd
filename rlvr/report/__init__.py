"""Run reports: ``report.html`` (self-contained), PNG figures and the numbers behind them, read from run files.

No torch: a report is made from what a run directory or a comparison directory holds, so
``rlvr report`` works on a laptop for runs trained anywhere.
"""

from rlvr.report.html import REPORT_FILE, render, write_report
from rlvr.report.load import RunData, Source, load_run, load_source

__all__ = ["write_report", "render", "load_source", "load_run", "Source", "RunData", "REPORT_FILE"]
