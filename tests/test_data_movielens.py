"""Local MovieLens: the three file layouts, folder or zip, and bad input."""

import csv
import logging
import zipfile
from pathlib import Path

import numpy as np
import pytest

import tfrs_irns  # noqa: F401
from tfrs_irns.data import movielens
from tfrs_irns.data.movielens import load_movielens
from tfrs_irns.errors import DataError

ML_LATEST_SMALL = Path(__file__).resolve().parents[1].parent / "shared/data/ml-latest-small"

FLAGS_NONE = "|".join(["0"] * 19)


def flags(*on):
    bits = ["0"] * 19
    for i in on:
        bits[i] = "1"
    return "|".join(bits)


# Each format: files as bytes, and what loading must give.
ML100K = {
    "u.data": b"196\t242\t3\t881250949\n186\t302\t3\t891717742\n196\t302\t1.5\t881250950\n",
    # latin-1 title; genre flags: 3 = Animation, 5 = Comedy; 0 = unknown only.
    "u.item": (
        f"242|Kolya (1996)|24-Jan-1997||http://x|{flags(5)}\n"
        f"302|Mis\xe9rables, Les (1995)|01-Jan-1995||http://y|{flags(3, 5)}\n"
        f"267|unknown||||{flags(0)}\n"
    ).encode("latin-1"),
}
ML1M = {
    "ratings.dat": b"1::1193::5::978300760\n1::661::3::978302109\n2::1193::4::978298413\n",
    "movies.dat": "1193::One Flew Over the Cuckoo's Nest (1975)::Drama\n661::Caf\xe9 (1996)::Animation|Children's|Musical\n".encode(
        "latin-1"
    ),
}
ML_LATEST = {
    "ratings.csv": b"userId,movieId,rating,timestamp\n1,1,4.0,964982703\n1,3,0.5,964981247\n2,1,5.0,964982224\n",
    "movies.csv": (
        'movieId,title,genres\n1,Toy Story (1995),Adventure|Animation\n'
        '3,"American President, The (1995)",Comedy|Drama\n'
        '5,"Spider-Man: ""Into"" the Verse (2018)",(no genres listed)\n'
        "7,Am\u00e9lie (2001),Comedy\n"
    ).encode("utf-8"),
}
EXPECTED = {
    "ml-100k": dict(
        user=["196", "186", "196"], item=["242", "302", "302"], rating=[3.0, 3.0, 1.5],
        ts=[881250949, 891717742, 881250950],
        items=["242", "302", "267"],
        titles=["Kolya (1996)", "Misérables, Les (1995)", "unknown"],
        genres=["Comedy", "Animation|Comedy", ""],
    ),
    "ml-1m": dict(
        user=["1", "1", "2"], item=["1193", "661", "1193"], rating=[5.0, 3.0, 4.0],
        ts=[978300760, 978302109, 978298413],
        items=["1193", "661"],
        titles=["One Flew Over the Cuckoo's Nest (1975)", "Café (1996)"],
        genres=["Drama", "Animation|Children's|Musical"],
    ),
    "ml-latest": dict(
        user=["1", "1", "2"], item=["1", "3", "1"], rating=[4.0, 0.5, 5.0],
        ts=[964982703, 964981247, 964982224],
        items=["1", "3", "5", "7"],
        titles=["Toy Story (1995)", "American President, The (1995)", 'Spider-Man: "Into" the Verse (2018)', "Amélie (2001)"],
        genres=["Adventure|Animation", "Comedy|Drama", "", "Comedy"],
    ),
}
FILES = {"ml-100k": ML100K, "ml-1m": ML1M, "ml-latest": ML_LATEST}


def write_folder(root: Path, files: dict) -> str:
    root.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        (root / name).write_bytes(data)
    return str(root)


def write_zip(path: Path, files: dict, top: str = "") -> str:
    with zipfile.ZipFile(path, "w") as zf:
        if top:
            zf.writestr(top + "/", b"")
        for name, data in files.items():
            zf.writestr(f"{top}/{name}" if top else name, data)
    return str(path)


def check(raw, fmt):
    want = EXPECTED[fmt]
    inter = raw.interactions
    assert inter.user_id.tolist() == want["user"]
    assert inter.item_id.tolist() == want["item"]
    assert inter.rating.tolist() == want["rating"] and inter.rating.dtype == np.float32
    assert inter.timestamp.tolist() == want["ts"] and inter.timestamp.dtype == np.int64
    assert raw.items.item_id.tolist() == want["items"]
    assert raw.items.title.tolist() == want["titles"]
    assert raw.items.genres.tolist() == want["genres"]
    assert raw.skipped_rows == 0
    assert f"({fmt} format)" in raw.description


@pytest.mark.parametrize("fmt", list(FILES))
@pytest.mark.parametrize("layout", ["folder", "nested folder", "zip", "zip with top folder"])
def test_formats_and_layouts(tmp_path, fmt, layout):
    files = FILES[fmt]
    if layout == "folder":
        path = write_folder(tmp_path / fmt, files)
    elif layout == "nested folder":
        write_folder(tmp_path / "outer" / fmt, files)
        path = str(tmp_path / "outer")
    elif layout == "zip":
        path = write_zip(tmp_path / f"{fmt}.zip", files)
    else:
        path = write_zip(tmp_path / f"{fmt}.zip", files, top=fmt)
    check(load_movielens(path), fmt)


@pytest.mark.parametrize("fmt", list(FILES))
@pytest.mark.parametrize("as_zip", [False, True])
def test_ratings_go_through_pyarrow_with_the_same_table(tmp_path, fmt, as_zip, monkeypatch):
    files = FILES[fmt]
    path = write_zip(tmp_path / "ml.zip", files) if as_zip else write_folder(tmp_path / "ml", files)
    fast = load_movielens(path)
    assert fast.interactions.user_codes is not None  # pyarrow read it: ids came as codes
    check(fast, fmt)
    # The numpy and line readers (pyarrow refusing everything) give the very same table.
    monkeypatch.setattr(movielens.arrow_source, "read_csv", lambda *a, **k: None)
    slow = load_movielens(path)
    assert slow.interactions.user_codes is None
    check(slow, fmt)


def test_a_double_colon_file_holding_a_tab_is_left_to_the_line_reader(tmp_path):
    # "::" becomes a tab for pyarrow only when no tab is there to be confused with it.
    files = dict(ML1M, **{"movies.dat": b"1193::One\tFlew::Drama\n661::Cafe::Musical\n"})
    raw = load_movielens(write_folder(tmp_path / "ml", files))
    assert raw.interactions.user_codes is not None
    assert raw.items.title.tolist() == ["One\tFlew", "Cafe"]


def test_ml100k_genre_names_from_u_genre(tmp_path):
    files = dict(ML100K)
    names = [f"G{k}" for k in range(19)]
    files["u.genre"] = "".join(f"{g}|{k}\n" for k, g in enumerate(names)).encode() + b"\n"
    raw = load_movielens(write_folder(tmp_path / "ml", files))
    assert raw.items.genres.tolist() == ["G5", "G3|G5", "G0"]


def test_windows_line_endings(tmp_path):
    files = {k: v.replace(b"\n", b"\r\n") for k, v in ML_LATEST.items()}
    check(load_movielens(write_folder(tmp_path / "ml", files)), "ml-latest")


def test_missing_path(tmp_path):
    with pytest.raises(DataError, match="nowhere: no such file or folder"):
        load_movielens(str(tmp_path / "nowhere"))


def test_folder_without_movielens_files_says_what_it_looked_for(tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("hi")
    with pytest.raises(DataError) as err:
        load_movielens(str(tmp_path / "empty"))
    msg = str(err.value)
    assert "empty: no MovieLens ratings file found" in msg
    for name in ("u.data", "ratings.dat", "ratings.csv"):
        assert name in msg


def test_ratings_without_movies_file(tmp_path):
    path = write_folder(tmp_path / "ml", {"ratings.csv": ML_LATEST["ratings.csv"]})
    with pytest.raises(DataError, match="found ratings.csv .* but not movies.csv"):
        load_movielens(path)


def test_not_a_zip(tmp_path):
    bogus = tmp_path / "data.zip"
    bogus.write_text("not a zip")
    with pytest.raises(DataError, match="data.zip: not a folder or a valid .zip file"):
        load_movielens(str(bogus))


def test_zip_with_two_releases_is_ambiguous(tmp_path):
    path = tmp_path / "two.zip"
    with zipfile.ZipFile(path, "w") as zf:
        for top in ("a", "b"):
            for name, data in ML_LATEST.items():
                zf.writestr(f"{top}/{name}", data)
    with pytest.raises(DataError, match="several MovieLens folders"):
        load_movielens(str(path))


def test_wrong_header(tmp_path):
    files = dict(ML_LATEST, **{"ratings.csv": b"user,movie,rating,timestamp\n1,1,4.0,1\n"})
    path = write_folder(tmp_path / "ml", files)
    with pytest.raises(DataError, match=r"ratings.csv, line 1: expected the header userId,movieId,rating,timestamp"):
        load_movielens(path)


def test_header_columns_in_another_order(tmp_path):
    files = dict(ML_LATEST, **{"ratings.csv": b"timestamp,rating,movieId,userId\n99,2.5,7,3\n"})
    raw = load_movielens(write_folder(tmp_path / "ml", files))
    assert raw.interactions.user_id.tolist() == ["3"]
    assert raw.interactions.item_id.tolist() == ["7"]
    assert raw.interactions.rating.tolist() == [2.5]
    assert raw.interactions.timestamp.tolist() == [99]


# (format, file, replacement content, expected "line N: problem")
BAD = [
    ("ml-latest", "ratings.csv", b"userId,movieId,rating,timestamp\n1,1,4.0,9\n1,3,4.0\n", "line 3: expected 4 columns, found 3"),
    ("ml-latest", "ratings.csv", b"userId,movieId,rating,timestamp\n1,1,4.0,9\n\n2,x,4.0,9\n", "line 4: movie id 'x' is not an integer id"),
    ("ml-latest", "ratings.csv", b"userId,movieId,rating,timestamp\n1.5,1,4.0,9\n", "line 2: user id '1.5' is not an integer id"),
    ("ml-latest", "ratings.csv", b"userId,movieId,rating,timestamp\n1,1,good,9\n", "line 2: rating 'good' is not a number"),
    ("ml-latest", "ratings.csv", b"userId,movieId,rating,timestamp\n1,1,4,9\n1,1,4,later\n", "line 3: timestamp 'later' is not a number or an ISO-8601 time (such as 1997-12-04T15:55:49Z)"),
    ("ml-latest", "movies.csv", b"movieId,title,genres\n1,A,Drama\nX,B,Comedy\n", "line 3: movie id 'X' is not an integer id"),
    ("ml-1m", "ratings.dat", b"1::1193::5::978300760\n1::661:3::978302109\n", "line 2: expected 4 columns, found 3"),
    ("ml-1m", "ratings.dat", b"1::1193::5::978300760\n1::661::five::978302109\n", "line 2: rating 'five' is not a number"),
    ("ml-1m", "movies.dat", b"1193::A::Drama\n661::B\n", "line 2: expected 3 columns, found 2"),
    ("ml-100k", "u.data", b"196\t242\t3\t881250949\n196 302 3 881250950\n", "line 2: expected 4 columns, found 1"),
    ("ml-100k", "u.item", f"242|Kolya|d||u|{FLAGS_NONE[:-1]}2\n".encode(), "line 1: genre flag 'Western' '2' is not 0 or 1"),
]


@pytest.mark.parametrize("fmt,name,content,problem", BAD)
@pytest.mark.parametrize("as_zip", [False, True])
def test_bad_rows_name_file_and_line(tmp_path, fmt, name, content, problem, as_zip):
    files = dict(FILES[fmt], **{name: content})
    if as_zip:
        path = write_zip(tmp_path / "ml.zip", files, top="ml")
        where = f"{path}:ml/{name}"
    else:
        path = write_folder(tmp_path / "ml", files)
        where = str(Path(path) / name)
    with pytest.raises(DataError) as err:
        load_movielens(path)
    assert str(err.value) == f"{where}, {problem}"


def test_skip_bad_rows_counts_and_warns(tmp_path, caplog):
    files = dict(
        ML_LATEST,
        **{
            "ratings.csv": b"userId,movieId,rating,timestamp\n1,1,4.0,9\n1,3\n2,x,1,1\n2,1,5.0,7\n",
            "movies.csv": b"movieId,title,genres\n1,A,Drama\nbad,B,Comedy\n3,C,Comedy\n",
        },
    )
    path = write_folder(tmp_path / "ml", files)
    with caplog.at_level(logging.WARNING):
        raw = load_movielens(path, skip_bad_rows=True)
    assert raw.skipped_rows == 3
    assert raw.interactions.user_id.tolist() == ["1", "2"]
    assert raw.interactions.timestamp.tolist() == [9, 7]
    assert raw.items.item_id.tolist() == ["1", "3"]
    messages = [r.getMessage() for r in caplog.records]
    assert any("ratings.csv: skipped 2 malformed rows" in m and "first at line 3" in m for m in messages)
    assert any("movies.csv: skipped 1 malformed row " in m for m in messages)


def test_no_ratings_is_an_error(tmp_path):
    files = dict(ML_LATEST, **{"ratings.csv": b"userId,movieId,rating,timestamp\n"})
    with pytest.raises(DataError, match="ratings.csv: no ratings"):
        load_movielens(write_folder(tmp_path / "ml", files))


@pytest.mark.integration
@pytest.mark.skipif(not ML_LATEST_SMALL.is_dir(), reason=f"shared MovieLens data not found at {ML_LATEST_SMALL}")
def test_ml_latest_small_counts_and_oracle():
    raw = load_movielens(str(ML_LATEST_SMALL))
    inter = raw.interactions
    assert len(inter) == 100_836
    assert len(np.unique(inter.user_id)) == 610
    assert len(raw.items) == 9_742
    # Oracle: the csv module, row by row.
    with open(ML_LATEST_SMALL / "ratings.csv", newline="") as fh:
        rows = list(csv.reader(fh))[1:]
    assert inter.user_id.tolist() == [r[0] for r in rows]
    assert inter.item_id.tolist() == [r[1] for r in rows]
    assert np.array_equal(inter.rating, np.array([float(r[2]) for r in rows], np.float32))
    assert inter.timestamp.tolist() == [int(r[3]) for r in rows]
    with open(ML_LATEST_SMALL / "movies.csv", newline="", encoding="utf-8") as fh:
        movies = list(csv.reader(fh))[1:]
    assert raw.items.title.tolist() == [m[1].strip() for m in movies]  # a few end in a space
    assert raw.items.genres.tolist() == ["" if m[2] == "(no genres listed)" else m[2] for m in movies]
