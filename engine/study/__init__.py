"""A study's definition: StudyConfig and its validation, its TOML form, and what a resumed study may change."""

from engine.study.compat import check_compatible, stored_config
from engine.study.config import FIELD_HELP, JIT_COMPILE, OBJECTIVES, PRUNERS, SAMPLERS, StudyConfig, validate
from engine.study.toml import config_from_dict, dump_config, load_config, read_toml, save_config

__all__ = ["FIELD_HELP", "JIT_COMPILE", "OBJECTIVES", "PRUNERS", "SAMPLERS", "StudyConfig", "check_compatible",
           "config_from_dict", "dump_config", "load_config", "read_toml", "save_config", "stored_config", "validate"]
