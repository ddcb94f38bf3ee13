"""Raw item strings per item index, for content towers."""

import dataclasses

import numpy as np
import pytest

import tfrs_irns  # noqa: F401
from tfrs_irns.data.item_features import item_feature_strings, joined_genres

from helpers import encoded_split, prepared_data


def data_with_side():
    data = prepared_data(encoded_split([1], [1]), encoded_split([], []), encoded_split([1], [2]), 1, 3)
    genres = np.array([[0, 0], [1, 1], [0, 0], [0, 1]], np.float32)
    catalogue = dataclasses.replace(
        data.catalogue, item_titles=np.array(["", "A", "B", "C"]), item_genres=genres, genre_names=["Action", "Drama"],
        item_columns={"brand": np.array(["", "x", "", "y"])},
    )
    return dataclasses.replace(data, catalogue=catalogue)


def test_genres_joined_from_the_multi_hot_table():
    assert joined_genres(data_with_side()).tolist() == ["", "Action|Drama", "", "Drama"]


def test_each_feature_by_name():
    data = data_with_side()
    assert item_feature_strings(data, "title").tolist() == ["", "A", "B", "C"]
    assert item_feature_strings(data, "brand").tolist() == ["", "x", "", "y"]
    with pytest.raises(KeyError, match="no item feature 'colour'"):
        item_feature_strings(data, "colour")


def test_no_genres_gives_empty_strings():
    data = prepared_data(encoded_split([1], [1]), encoded_split([], []), encoded_split([1], [1]), 1, 2)
    assert joined_genres(data).tolist() == ["", "", ""]
