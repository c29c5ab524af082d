"""Search spaces: the parameter type (a leaf), its checks, and its draws from an Optuna trial."""

from engine.space.checks import Limits, check_spec
from engine.space.draw import first_params, fixed_params, suggest
from engine.space.params import KINDS, ParamSpec, epochs_ceiling

__all__ = ["KINDS", "Limits", "ParamSpec", "check_spec", "epochs_ceiling", "first_params", "fixed_params", "suggest"]
