"""Keras policy: TFRS 0.7.7 runs only on Keras 2 (``tf-keras``).

``tf.keras`` is resolved lazily by TensorFlow on first attribute access, using
``TF_USE_LEGACY_KERAS``. We set the variable before that access so users never
need to know; if something already resolved ``tf.keras`` to Keras 3 we cannot
undo it and say exactly what to do instead.
"""

from __future__ import annotations

import os

os.environ["TF_USE_LEGACY_KERAS"] = "1"

import tensorflow as tf  # noqa: E402  (must follow the environment variable)


def _check() -> None:
    name = getattr(tf.keras, "__name__", "")
    if not name.startswith("tf_keras"):
        raise ImportError(
            "tfrs_irns needs Keras 2 (tf-keras), but tf.keras was already resolved to "
            f"Keras 3 ({name or 'unknown module'}) before `import tfrs_irns`. "
            "Set TF_USE_LEGACY_KERAS=1 in the environment before starting Python "
            "(e.g. `export TF_USE_LEGACY_KERAS=1`), or import tfrs_irns before anything "
            "touches tf.keras, and never `import keras` in the same process."
        )


_check()
