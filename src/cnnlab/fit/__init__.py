"""The main job: data and a budget in, a verified deployable model out."""

from cnnlab.fit.api import FIT_FILE, FitReport, fit_data

__all__ = ["FIT_FILE", "FitReport", "fit_data"]
