"""Data: sources → one interaction table → splits → encoded index arrays.

Every source (synthetic, local MovieLens, any CSV, tfds) yields a
:class:`RawDataset` of string ids; :func:`prepare_data` splits it and maps ids
to indices with vocabularies learned from the training split (0 = OOV).
"""

from tfrs_irns._lazy import lazy_names

# Public name -> the module that defines it, loaded on first use (PEP 562): the
# package's params module, which the config imports, loads no TensorFlow.
_EXPORTS = {
    "EncodedSplit": "tfrs_irns.data.prepare",
    "Interactions": "tfrs_irns.data.table",
    "ItemTable": "tfrs_irns.data.table",
    "OOV_INDEX": "tfrs_irns.data.vocab",
    "PreparedData": "tfrs_irns.data.prepare",
    "RawDataset": "tfrs_irns.data.table",
    "Vocabulary": "tfrs_irns.data.vocab",
    "load_csv": "tfrs_irns.data.csv_source",
    "load_movielens": "tfrs_irns.data.movielens",
    "load_raw": "tfrs_irns.data.sources",
    "load_tfds": "tfrs_irns.data.tfds_source",
    "make_synthetic": "tfrs_irns.data.synthetic",
    "prepare_data": "tfrs_irns.data.prepare",
    "prepare_from_raw": "tfrs_irns.data.prepare",
    "split_interactions": "tfrs_irns.data.splits",
}

__all__ = list(_EXPORTS)
__getattr__, __dir__ = lazy_names(__name__, _EXPORTS)
