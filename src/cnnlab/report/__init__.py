"""Self-contained HTML reports of one or more runs (`cnnlab report RUN...`)."""

from cnnlab.report.api import write_report

__all__ = ["write_report"]
