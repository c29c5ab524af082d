"""Keep the best k trained models on disk as .keras files; delete the ones that fall out."""

from __future__ import annotations

from pathlib import Path
from typing import Any


class ModelKeeper:
    """Holds (value, trial number, path) of the kept models, best first."""

    def __init__(self, folder: Path, keep: int, existing: list[tuple[float, int]] = ()) -> None:
        self.folder = folder
        self.keep = keep
        self.kept = [(value, number, self.path_for(number)) for value, number in existing
                     if self.path_for(number).is_file()]
        self.kept.sort(reverse=True)

    def path_for(self, number: int) -> Path:
        return self.folder / f"trial-{number:04d}.keras"

    def wants(self, value: float) -> bool:
        """Whether a model with this value would be kept."""
        return self.keep > 0 and (len(self.kept) < self.keep or value > self.kept[-1][0])

    def offer(self, number: int, value: float, model: Any) -> Path | None:
        """Save the model if it ranks in the best k; return its path, or None."""
        if not self.wants(value):
            return None
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.path_for(number)
        model.save(path)
        self.kept.append((value, number, path))
        self.kept.sort(reverse=True)
        for _, _, dropped in self.kept[self.keep:]:
            dropped.unlink(missing_ok=True)
        del self.kept[self.keep:]
        return path
