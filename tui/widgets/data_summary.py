"""What the chosen data is, before a study starts: shape, classes and counts, loaded off the UI thread."""

from __future__ import annotations

from textual import work
from textual.widgets import Static


class DataSummary(Static):
    """One line under the dataset fields: `images 28x28x1 · 10 classes · 3600 train, 400 validate, 1000 test`."""

    DEFAULT_CSS = "DataSummary { color: $text-muted; height: auto; padding-left: 1; }"

    def show_for(self, dataset: str, subset: int) -> None:
        """Describe `dataset` (a name or a path), reading it in a thread; a dataset to download is not fetched."""
        from engine.data import availability

        if not dataset:
            self.update("")
        elif availability(dataset) == "needs download":
            self.update(f"{dataset}: not downloaded yet; it is fetched when the study starts (offline: mnist-5k)")
        elif dataset == "auto" and availability("mnist") != "cached":
            self.update("auto: MNIST is not cached; the study downloads it if it can, else uses mnist-5k")
        else:
            self.update(f"reading {dataset}…")
            self.load(dataset, subset)

    @work(thread=True, exclusive=True, group="data", exit_on_error=False)
    def load(self, dataset: str, subset: int) -> None:
        from engine.keras import load_dataset

        try:
            info = load_dataset(dataset, subset).describe()
        except Exception as exc:  # noqa: BLE001 - a bad file is said here, and again by the form on start
            self.app.call_from_thread(self.update, f"[red]{exc}[/red]")
            return
        text = (f"{info['kind']} · {info['num_classes']} classes · {info['n_train']} train "
                f"({info['n_val']} validate: {info['validation']}) · {info['n_test']} test")
        if info["note"]:
            text += f"\n[yellow]{info['note']}[/yellow]"
        self.app.call_from_thread(self.update, text)
