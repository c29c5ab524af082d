"""A search space checked against its model: the model's parameters, their limits, and what the data allows."""

from __future__ import annotations

from engine.errors import ConfigError
from engine.models.registry import ModelSpec
from engine.space import Param, check_param


def check_space(spec: ModelSpec, space: list[Param]) -> None:
    """Raise ConfigError for the first invalid parameter of a model's space."""
    allowed = [s.name for s in spec.space]
    names = [s.name for s in space]
    for name in names:
        if name not in allowed:
            raise ConfigError(f"space.{name}: unknown parameter for {spec.name}; allowed: {', '.join(allowed)}")
        if names.count(name) > 1:
            raise ConfigError(f"space.{name}: given twice")
    for name in spec.required:
        if name not in names:
            raise ConfigError(f"space.{name}: missing; the {spec.name} model needs it")
    for param in space:
        check_param(param, spec.limits.get(param.name))
    if spec.name == "mlp" and spec.builtin:
        _check_mlp_shrink(space)


def _check_mlp_shrink(space: list[Param]) -> None:
    """Layer i of the MLP has int(first_layer_unit / 2**i) units: the last one must keep at least one."""
    params = {param.name: param for param in space}
    units, layers = params["first_layer_unit"].extremes()[0], params["layer_num"].extremes()[1]
    if int(units / 2 ** (layers - 1)) < 1:
        raise ConfigError(f"space.layer_num: with first_layer_unit {units:g} and layer_num {layers:g} the MLP's last "
                          f"layer would have 0 units; first_layer_unit must be >= 2^(layer_num-1) = "
                          f"{2 ** (layers - 1):g}")


def check_architecture(spec: ModelSpec, space: list[Param], input_shape: tuple[int, ...]) -> None:
    """What only the data can tell: the CNN needs images, and its pooling layers (each halves the image)
    must leave a pixel."""
    if spec.needs_images and len(input_shape) != 3:
        raise ConfigError(f"model: the built-in {spec.name} needs images (N, H, W) or (N, H, W, C); this data is a "
                          f"table of {input_shape[0]} features: use mlp or a model file")
    if spec.name != "cnn" or not spec.builtin:
        return
    side = min(input_shape[:2])
    layers = int(next(param for param in space if param.name == "layer_num").extremes()[1])
    if side // 2**layers < 1:
        most = max(side.bit_length() - 1, 0)
        raise ConfigError(f"space.layer_num: {layers} pooling layers shrink the {input_shape[0]}x{input_shape[1]} "
                          f"images to nothing; at most {most} for this data")
