"""The models tunedeck can tune: one registry of specs (the built-in MLP and CNN, and any model file)."""

from engine.models.checks import check_architecture, check_space
from engine.models.registry import BUILTIN_SPECS, MODEL_HELP, ModelSpec, is_model_file, spec_for

__all__ = ["BUILTIN_SPECS", "MODEL_HELP", "ModelSpec", "check_architecture", "check_space", "is_model_file",
           "spec_for"]
