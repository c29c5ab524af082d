"""The one Textual message that carries engine events into the UI thread."""

from __future__ import annotations

from textual.message import Message

from engine import EpochEnded


class EngineEvent(Message):
    """An engine event, posted from the engine thread with `post_message`."""

    def __init__(self, event: object) -> None:
        super().__init__()
        self.event = event

    def can_replace(self, message: Message) -> bool:
        """A burst of EpochEnded for one trial collapses to the latest (it carries the whole curve)."""
        return (isinstance(self.event, EpochEnded) and isinstance(message, EngineEvent)
                and isinstance(message.event, EpochEnded) and message.event.number == self.event.number)
