"""Datasets: built-in names and files of labelled arrays, checked and split; loaded once per process."""

from engine.data.datasets import (
    BUILTIN,
    KERAS_DATASETS,
    Dataset,
    availability,
    keras_cache_dir,
    load_dataset,
    stratified_indices,
    validation_split,
)
from engine.data.readers import IDX_FILES, read_npz

__all__ = ["BUILTIN", "IDX_FILES", "KERAS_DATASETS", "Dataset", "availability", "keras_cache_dir", "load_dataset",
           "read_npz", "stratified_indices", "validation_split"]
