"""The footer, by priority: `?` (every key), the screen's own keys in their order, then the app's, then the focused
widget's (a table's sort keys), so that at a narrow width what is cut is the least needed."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.widgets import Footer
from textual.widgets._footer import FooterKey

COMPACT_BELOW = 120  # columns: the keys closer together
PALETTE_WIDTH = 14  # the command palette's key, docked at the right end


class PriorityFooter(Footer):
    """Textual's footer with its keys ranked by the app's `screen_bindings` (the order `?` shows them in)."""

    def compose(self) -> ComposeResult:
        if not self._bindings_ready:
            return
        active = self.screen.active_bindings
        shown = [(key, binding) for key, binding, _ in self.app.screen_bindings(self.screen) if binding.show]
        shown.sort(key=lambda row: row[1].action != "help")  # `?` first: it tells where every other key is
        room = self.size.width - PALETTE_WIDTH if self.size.width else None  # None: not laid out yet
        for key, binding in shown:
            display = self.app.get_key_display(binding)
            width = len(display) + len(binding.description) + (2 if self.compact else 3)
            if room is not None and width > room:
                break  # the rest are in `?`: a key cut in half under the palette's would read as another
            room = None if room is None else room - width
            yield FooterKey(binding.key, display, binding.description, binding.action,
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
        self.call_after_refresh(self.recompose)
