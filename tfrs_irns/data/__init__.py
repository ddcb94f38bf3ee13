"""Data: sources → one interaction table → splits → encoded index arrays.

Every source (synthetic, local MovieLens, any CSV, tfds) yields a
:class:`RawDataset` of string ids; :func:`prepare_data` splits it and maps ids
to indices with vocabularies learned from the training split (0 = OOV).
"""

from tfrs_irns.data.csv_source import load_csv
from tfrs_irns.data.movielens import load_movielens
from tfrs_irns.data.prepare import EncodedSplit, PreparedData, prepare_data, prepare_from_raw
from tfrs_irns.data.sources import load_raw
from tfrs_irns.data.splits import split_interactions
from tfrs_irns.data.synthetic import make_synthetic
from tfrs_irns.data.table import Interactions, ItemTable, RawDataset
from tfrs_irns.data.tfds_source import load_tfds
from tfrs_irns.data.vocab import OOV_INDEX, Vocabulary

__all__ = [
    "EncodedSplit",
    "Interactions",
    "ItemTable",
    "OOV_INDEX",
    "PreparedData",
    "RawDataset",
    "Vocabulary",
    "load_csv",
    "load_movielens",
    "load_raw",
    "load_tfds",
    "make_synthetic",
    "prepare_data",
    "prepare_from_raw",
    "split_interactions",
]
