"""Optuna samplers and pruners for a config; each worker's sampler seeded apart from the others'."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import optuna
from optuna.distributions import BaseDistribution
from optuna.samplers import BaseSampler
from optuna.trial import FrozenTrial, TrialState

from engine.study import StudyConfig

SEED_LIMIT = 2**32  # NumPy's seeds are 32-bit


class FirstTrialSeededSampler(BaseSampler):
    """A sampler seeded with study seed + the number of this worker's first trial.

    Trial numbers are handed out by the storage, one each, so no two workers of a study share a seed, with no
    coordinator. A worker alone on a new study gets its first trial 0 and draws exactly what `seed` draws (the
    seed protocol's reproduction); a resumed study goes on from seed + the trials it already has instead of
    drawing its first parameters again. Everything else is delegated to the sampler that `make(seed)` builds.
    """

    def __init__(self, make: Callable[[int], BaseSampler], seed: int) -> None:
        self._make = make
        self._seed = seed
        self._inner: BaseSampler | None = None

    @property
    def inner(self) -> BaseSampler:
        if self._inner is None:
            raise RuntimeError("the sampler is seeded by its first trial")
        return self._inner

    def before_trial(self, study: optuna.Study, trial: FrozenTrial) -> None:
        if self._inner is None:
            self._inner = self._make((self._seed + trial.number) % SEED_LIMIT)
        self._inner.before_trial(study, trial)

    def infer_relative_search_space(self, study: optuna.Study, trial: FrozenTrial) -> dict[str, BaseDistribution]:
        return self.inner.infer_relative_search_space(study, trial)

    def sample_relative(self, study: optuna.Study, trial: FrozenTrial,
                        search_space: dict[str, BaseDistribution]) -> dict[str, Any]:
        return self.inner.sample_relative(study, trial, search_space)

    def sample_independent(self, study: optuna.Study, trial: FrozenTrial, param_name: str,
                           param_distribution: BaseDistribution) -> Any:
        return self.inner.sample_independent(study, trial, param_name, param_distribution)

    def after_trial(self, study: optuna.Study, trial: FrozenTrial, state: TrialState,
                    values: list[float] | None) -> None:
        self.inner.after_trial(study, trial, state, values)

    def reseed_rng(self) -> None:
        if self._inner is not None:
            self._inner.reseed_rng()


def make_sampler(config: StudyConfig) -> BaseSampler:
    """Optuna's sampler for the config. TPE keeps Optuna's defaults, with constant_liar so that trials running
    on other workers count as (pessimistic) results and are not proposed again."""
    if config.sampler == "random":
        return FirstTrialSeededSampler(lambda seed: optuna.samplers.RandomSampler(seed=seed), config.seed)
    return FirstTrialSeededSampler(lambda seed: optuna.samplers.TPESampler(seed=seed, constant_liar=True),
                                   config.seed)


def make_pruner(config: StudyConfig) -> optuna.pruners.BasePruner:
    """Optuna's pruner for the config."""
    if config.pruner == "asha":  # asynchronous successive halving
        return optuna.pruners.SuccessiveHalvingPruner(min_resource=1, reduction_factor=3)
    if config.pruner == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=1)
    if config.pruner == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=1)
    return optuna.pruners.NopPruner()
