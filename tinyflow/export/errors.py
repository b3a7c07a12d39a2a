"""The error of a network or setting that cannot be exported."""

from __future__ import annotations


class ExportError(ValueError):
    """A network, layer or export setting that a format cannot represent, or an export that would overwrite
    one; the message names the layer or key and what the format takes."""
