"""A model built for a trial: the built-in MLP and CNN or a model file's build_model, compiled and checked."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import keras

from engine.errors import ConfigError
from engine.keras.builders import BUILDERS, compile_model
from engine.keras.callbacks import released_custom_gradients
from engine.keras.errors import describe_error
from engine.models import ModelSpec
from engine.space import Param, first_params


def build_model(spec: ModelSpec, params: dict[str, Any], input_shape: tuple[int, ...], num_classes: int) -> Any:
    """What the spec builds for these parameters: a built-in's builder, or the model file's build_model."""
    build = BUILDERS[spec.name] if spec.builtin else spec.build
    return build(dict(params), input_shape, num_classes)


JIT_COMPILE = {"off": False, "auto": "auto", "on": True}  # StudyConfig.jit_compile -> Keras' compile argument


def build_checked(spec: ModelSpec, params: dict[str, Any], input_shape: tuple[int, ...], num_classes: int,
                  jit_compile: str = "off") -> keras.Model:
    """The spec's model for these parameters, compiled (Adam, sparse categorical cross-entropy, accuracy when the
    builder left it uncompiled) with an "accuracy" metric and one output unit per class; else a ConfigError.
    The study's jit_compile applies to the built-ins and to a model file's uncompiled model; a model file that
    compiles its model keeps its own setting (`xla_applied` says which)."""
    where = f"model: {Path(spec.path).name or spec.name}"
    model = build_model(spec, params, input_shape, num_classes)
    if not isinstance(model, keras.Model):
        raise ConfigError(f"{where} build_model returned {type(model).__name__}, not a keras.Model")
    model.tunedeck_compiled = spec.builtin or not model.compiled
    if model.tunedeck_compiled:  # a built-in's builder compiled it the same way: compiled again, with the policy
        compile_model(model, params, JIT_COMPILE[jit_compile])
    units = model.outputs[0].shape[-1] if model.outputs else None
    if units != num_classes:
        raise ConfigError(f"{where} build_model's output has {units} units; the data has {num_classes} classes "
                          f"(use the num_classes argument)")
    if "accuracy" not in str(model.get_compile_config().get("metrics")):
        raise ConfigError(f"{where} build_model's model is compiled without an \"accuracy\" metric; add "
                          f"metrics=[\"accuracy\"] (or leave it uncompiled)")
    return model


def xla_applied(model: keras.Model, jit_compile: str) -> str:
    """Which XLA setting the model trains with, as the summary says it: "off", "on", "auto: on" (Keras chose),
    or "model file: on" (the file compiled its model itself)."""
    on = "on" if model.jit_compile else "off"
    if not getattr(model, "tunedeck_compiled", True):
        return f"model file: {on}"
    return f"auto: {on}" if jit_compile == "auto" else jit_compile


def dry_build(spec: ModelSpec, space: list[Param], input_shape: tuple[int, ...], num_classes: int) -> None:
    """Build a model file's model once before any training, on the first trial's parameters, then discard it:
    a broken build_model is a one-line error naming the file, not three failed trials."""
    params = first_params(space)
    try:
        with released_custom_gradients():
            build_checked(spec, params, input_shape, num_classes)
    except ConfigError:
        raise
    except Exception as exc:  # the user's build_model
        raise ConfigError(f"model: {Path(spec.path).name} build_model({params}) raised {describe_error(exc)}") from None
    finally:
        keras.backend.clear_session(free_memory=False)
