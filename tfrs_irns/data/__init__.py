"""Data: sources → one interaction table → splits → encoded index arrays.

Every source (synthetic, local MovieLens, any CSV, tfds) yields a
:class:`RawDataset` of string ids; :func:`prepare_data` splits it and maps ids
to indices with vocabularies learned from the training split (0 = OOV).
"""

from tfrs_irns._lazy import lazy_names

# Loaded on first use (PEP 562): the package's params module, which the config imports, loads no TensorFlow.
__getattr__, __dir__, __all__ = lazy_names(__name__, """
    prepare: EncodedSplit PreparedData prepare_data prepare_from_raw
    table: Interactions ItemTable RawDataset
    vocab: OOV_INDEX Vocabulary
    csv_source: load_csv
    movielens: load_movielens
    sources: load_raw
    tfds_source: load_tfds
    synthetic: make_synthetic
    splits: split_interactions
""")
