"""The setup form's config file: load a TOML file into the form, save the form as one (asking before it replaces
a different file)."""

from __future__ import annotations

from pathlib import Path

from textual.widgets import Input, Static

from engine import ConfigError, dump_config, load_config
from engine.files import write_text_atomically
from tui.guard import guarded
from tui.screens.modals import ConfirmScreen


def show_error(widget: Static, message: str) -> None:
    """Show an inline error line, or hide it when there is none."""
    widget.update(message)
    widget.display = bool(message)


class ConfigFileActions:
    """Mixed into SetupScreen: ctrl+o loads the file named in the Config file field, ctrl+s saves the form there."""

    @guarded
    def action_load(self) -> None:
        """Fill the form from the file; edits made since the form was loaded or saved are asked about first."""
        path = self.query_one("#config_path", Input).value
        try:
            config = load_config(path)
        except ConfigError as exc:  # shown where the user looks (a notification), and under the field
            show_error(self.query_one("#err-config", Static), str(exc))
            self.notify(str(exc), title="Cannot load the config", severity="error", timeout=10)
            return

        def load(yes: bool | None = True) -> None:
            if yes:
                self.app.open_setup(config, path)
                self.app.notify(f"Loaded {path}")

        if not self.edited:
            load()
            return
        self.app.push_screen(ConfirmScreen(f"Replace this form's unsaved edits with {path}?"), load)

    @guarded
    def action_save(self) -> None:
        """Save the form as TOML; a different file already there is only replaced when the user says so."""
        config = self.validate()
        path = Path(self.query_one("#config_path", Input).value).expanduser()
        if config is None:
            self.notify("Fix the invalid fields before saving", severity="error")
            return
        text = dump_config(config, comments=True)
        if path.is_file() and path.read_text(encoding="utf-8", errors="replace") != text:
            def answered(yes: bool | None) -> None:
                if yes:
                    self.write_config(path, text)

            self.app.push_screen(ConfirmScreen(f"{path} exists. Overwrite it with this form?"), answered)
            return
        self.write_config(path, text)

    def write_config(self, path: Path, text: str) -> None:
        try:
            write_text_atomically(path, text)
        except OSError as exc:
            message = f"config: cannot write {path}: {exc.strerror or exc}"
            show_error(self.query_one("#err-config", Static), message)
            self.notify(message, severity="error")
            return
        self.remember_form()
        self.notify(f"Saved {path}")
