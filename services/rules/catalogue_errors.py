"""The purpose catalogue's refusal and its text limit, shared by the catalogue and its
recipients. Pure."""

from __future__ import annotations

from typing import Final

#: the longest text a catalogue entry holds (a title, a description, a recipient's name)
MAX_TEXT: Final = 500


class CatalogueError(ValueError):
    """The catalogue is unusable; the message names the purpose and the key, `field` the key
    alone (`recipients`, `texts.fi.title`) for a problem document."""

    def __init__(self, message: str, field: str = "") -> None:
        super().__init__(message)
        self.field = field
