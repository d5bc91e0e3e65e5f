"""Several architectures trained and measured alike, side by side in one report."""

from cnnlab.compare.api import COMPARE_FILE, ComparisonReport, compare_models

__all__ = ["COMPARE_FILE", "ComparisonReport", "compare_models"]
