"""A Keras model written atomically: never a truncated .keras file under the final name."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any


def save_atomically(model: Any, path: Path) -> None:
    """model.save() to a temporary file beside `path`, then rename it over `path`: a full disk or a kill never
    leaves a truncated model under the final name."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.stem}.{os.getpid()}.tmp.keras")  # Keras insists on the suffix
    try:
        model.save(temporary)
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
