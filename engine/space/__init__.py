"""Search spaces: the parameter type (a leaf), its checks, and its draws from an Optuna trial."""

from engine.space.checks import Limits, check_param
from engine.space.draw import distribution, first_params, fitted, fixed_params, suggest
from engine.space.params import KINDS, Param, epochs_ceiling

__all__ = ["KINDS", "Limits", "Param", "check_param", "distribution", "epochs_ceiling", "first_params", "fitted",
           "fixed_params", "suggest"]
