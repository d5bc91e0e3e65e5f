"""Architecture selection under a deployment budget: measure, shortlist, rank by proxy training, explain."""

from cnnlab.select.api import SELECT_FILE, InfeasibleBudget, SelectionReport, select_architecture
from cnnlab.select.budget import Budget, parse_bytes, parse_latency_ms
from cnnlab.select.pool import Candidate, default_pool, parse_candidate

__all__ = [
    "SELECT_FILE",
    "Budget",
    "Candidate",
    "InfeasibleBudget",
    "SelectionReport",
    "default_pool",
    "parse_bytes",
    "parse_candidate",
    "parse_latency_ms",
    "select_architecture",
]
