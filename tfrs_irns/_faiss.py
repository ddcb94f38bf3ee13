"""The optional ``faiss`` (the ``[ann]`` extra), imported only by the features that need it.

The export's ANN index and GCBS's ``ann`` graph builder both use it; a missing
faiss is one :class:`~tfrs_irns.errors.UserError` line saying what needed it and
how to install it.
"""

from __future__ import annotations

from typing import Any

from tfrs_irns.errors import UserError

INSTALL = "pip install -e '.[ann]' (or pip install faiss-cpu)"


def import_faiss(needed_by: str, otherwise: str = "") -> Any:
    """The ``faiss`` module, or a one-line :class:`UserError`: ``needed_by`` needs it, how to
    install it, and ``otherwise`` (what to do instead, if anything)."""
    try:
        import faiss  # noqa: PLC0415
    except ImportError:
        alternative = f", or {otherwise}" if otherwise else ""
        raise UserError(f"{needed_by} needs faiss, which is not installed: {INSTALL}{alternative}") from None
    return faiss
