"""The footer, by priority: `?` (every key), the screen's own keys in their order, then the app's, then the focused
widget's (a table's sort keys), so that at a narrow width what is cut is the least needed."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.widgets import Footer
from textual.widgets._footer import FooterKey

COMPACT_BELOW = 120  # columns: the keys closer together


class PriorityFooter(Footer):
    """Textual's footer with its keys ranked by the app's `screen_bindings` (the order `?` shows them in)."""

    def compose(self) -> ComposeResult:
        if not self._bindings_ready:
            return
        active = self.screen.active_bindings
        shown = [(key, binding) for key, binding, _ in self.app.screen_bindings(self.screen) if binding.show]
        shown.sort(key=lambda row: row[1].action != "help")  # `?` first: it tells where every other key is
        self.styles.grid_size_columns = len(shown) + 1
        for key, binding in shown:
            yield FooterKey(binding.key, self.app.get_key_display(binding), binding.description, binding.action,
                            disabled=not active[key].enabled, tooltip=active[key].tooltip
                            ).data_bind(compact=Footer.compact)
        yield from self.palette_key(active)

    def palette_key(self, active) -> ComposeResult:
        key = self.app.COMMAND_PALETTE_BINDING
        if self.show_command_palette and self.app.ENABLE_COMMAND_PALETTE and key in active:
            binding = active[key].binding
            yield FooterKey(binding.key, self.app.get_key_display(binding), binding.description, binding.action,
                            classes="-command-palette")

    def on_resize(self) -> None:
        self.compact = self.size.width < COMPACT_BELOW
