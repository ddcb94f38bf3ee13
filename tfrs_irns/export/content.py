"""Serving a content tower: raw item strings → candidate embedding, inside the SavedModel.

The point of a content tower is that items added after training can be
served without retraining: a new listing's title and category are enough to
embed it and add it to the index. So the export carries the tower's raw-string
preprocessing (the same :func:`~tfrs_irns.layers.item_content.make_encoders`
the catalogue was encoded with: string lowering and splitting, hash-table
lookups — core TensorFlow ops) and the tower's weights, behind one signature:

* ``candidate_embedding_from_features``: one string tensor ``[B]`` per content
  feature, named after it (``title``; ``genres`` ``|``-joined; declared item
  columns) → ``embedding`` float32 ``[B, d]``.

The embedding is the tower's for an item without an id row (as a cold item's
in training): an item the model knows gets the embedding of its content only,
not its trained id row — use ``candidate_embedding`` for those.
"""

from __future__ import annotations

from typing import Any

import tensorflow as tf

from tfrs_irns.layers.contract import ContentTowerProtocol
from tfrs_irns.layers.item_content import make_encoders

SIGNATURE = "candidate_embedding_from_features"


def has_content(tower: Any) -> bool:
    """Whether ``tower`` embeds items from content features (and so can be served from them)."""
    return isinstance(tower, ContentTowerProtocol) and bool(tower.features)


class ItemFeatureEncoder(tf.Module):
    """Raw feature strings → candidate embeddings with ``tower``'s encoders and weights.

    Args:
      tower: a :class:`~tfrs_irns.layers.item_content.ContentItemTower` (or
        any :class:`~tfrs_irns.layers.contract.ContentTowerProtocol` with features).
    """

    def __init__(self, tower: Any) -> None:
        super().__init__(name="item_features")
        if not has_content(tower):
            raise ValueError("tower has no content features to serve")
        self.tower = tower
        self.feature_names = [f["name"] for f in tower.features]
        self._encoders = make_encoders(tower.features)
        # Tracked, so the lookup tables (vocabularies) are saved with the module.
        self.lookup_layers = [self._encoders[name].layer for name in self.feature_names]
        specs = {name: tf.TensorSpec([None], tf.string, name=name) for name in self.feature_names}
        self.embed = tf.function(self._embed, input_signature=[specs])

    def _embed(self, features: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
        encoded = {name: self._encoders[name](features[name]) for name in self.feature_names}
        return {"embedding": tf.cast(self.tower.embed_encoded(encoded, training=False), tf.float32)}

    def signature(self) -> Any:
        return self.embed.get_concrete_function()
