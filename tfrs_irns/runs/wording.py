"""Library errors in the config's words.

A library layer names its own arguments (``split=cold_users``, ``user_column``), as
Keras and TFRS do, because it cannot know how it was driven. A run is driven by a
config, so this module, above the libraries, rewords what they raise into the
config's keys (``data.split=cold_users``, ``data.csv.user_column``) and adds the
advice that needs the config (a diverged training: lower ``train.learning_rate``).
The user still reads one line naming the key they wrote.
"""

from __future__ import annotations

import contextlib
import copy
from typing import Iterator

from tfrs_irns.config import iter_keys
from tfrs_irns.errors import DivergedError, UserError

#: The data layer's argument names → the config keys that set them (the names are the
#: ``data`` section's field names, unique within it; ``load_tfds`` calls its folder ``data_dir``).
DATA_KEYS = {key.rsplit(".", 1)[1]: key for key, _, _ in iter_keys() if key.startswith("data.")}
DATA_KEYS["data_dir"] = "data.tfds_data_dir"

#: What a run's user changes when training diverged.
DIVERGED_ADVICE = "try a lower train.learning_rate"


def in_config_words(exc: UserError) -> UserError:
    """``exc`` as the user of a config should read it."""
    if isinstance(exc, DivergedError):
        if DIVERGED_ADVICE in str(exc):  # already said by an outer run function
            return exc
        new = copy.copy(exc)
        new.args = (f"{exc} ({DIVERGED_ADVICE})",)
        return new
    return exc.reworded(DATA_KEYS)


@contextlib.contextmanager
def config_words() -> Iterator[None]:
    """Reraise a library's :class:`UserError` in the config's words (a decorator, too)."""
    try:
        yield
    except UserError as exc:
        reworded = in_config_words(exc)
        if reworded is exc:
            raise
        raise reworded from None
