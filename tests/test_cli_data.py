"""``tfrs-irns data``: the summary of a config's data, and one line per mistake."""

import io
import json
import time

import pytest

from tfrs_irns.cli.main import main
from tfrs_irns.data.progress import Progress


def run_cli(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def _config(tmp_path, body: str) -> str:
    path = tmp_path / "c.yaml"
    path.write_text(body)
    return str(path)


@pytest.fixture
def csv_config(tmp_path):
    # 6 users, 5 items; leave_last_out holds each user's latest row out.
    # Item e only occurs as u5's last row, and u6 has a single row (kept in train).
    rows = [("u1", "a", 1), ("u1", "b", 2), ("u1", "a", 3), ("u2", "a", 1), ("u2", "c", 2),
            ("u3", "a", 1), ("u3", "d", 2), ("u4", "a", 1), ("u4", "b", 5), ("u5", "b", 1), ("u5", "e", 9),
            ("u6", "a", 4)]
    data = tmp_path / "events.csv"
    data.write_text("user_id,item_id,timestamp\n" + "".join(f"{u},{i},{t}\n" for u, i, t in rows))
    return _config(tmp_path, f"data:\n  source: csv\n  path: {data}\n  split: leave_last_out\n"
                             "  validation_fraction: 0\ntrain:\n  early_stopping:\n    enabled: false\n")


def test_summary_numbers_by_hand(csv_config, capsys, tmp_path):
    out_json = str(tmp_path / "summary.json")
    code, out, err = run_cli(capsys, "data", "--config", csv_config, "--json", out_json)
    assert code == 0, err
    s = json.loads(open(out_json).read())
    assert s["rows_read"] == 12 and s["rows_skipped"] == 0
    # (u1, a) occurs twice: data.duplicates=keep_last keeps its later copy (t=3).
    assert s["duplicate_rows"] == 1 and s["interactions"] == 11 and not s["duplicates_kept"]
    assert (s["users"], s["items"]) == (6, 5)
    # test = the last row of u1..u5: a, c, d, b, e; train = the other 6 rows.
    assert s["splits"]["train"] == {"interactions": 6, "users": 6, "items": 2}
    assert s["splits"]["test"] == {"interactions": 5, "users": 5, "items": 2}  # a and b are known to training
    assert s["splits"]["validation"]["interactions"] == 0
    # train pairs: (u1,b), (u2,a), (u3,a), (u4,a), (u5,b), (u6,a): 6 of 6 x 2
    assert s["train_distinct_pairs"] == 6 and s["sparsity"] == pytest.approx(6 / 12)
    # top 1% of 2 items = 1 item: 'a' has 4 of 6 training interactions.
    assert s["top1pct_items"] == 1 and s["top1pct_share"] == pytest.approx(4 / 6)
    assert s["cold_test_item_share"] == pytest.approx(3 / 5) and s["cold_test_user_share"] == 0.0  # c, d, e
    assert s["cold_test_share"] == pytest.approx(3 / 5)
    assert set(s["seconds"]) == {"load", "split+encode", "summary", "total"}
    assert "rows: 12 read, 0 skipped" in out and "1 repeated (user, item) rows dropped (data.duplicates)" in out
    assert "head: the top 1% of items (1) hold 66.7% of the training interactions" in out
    assert "cold test: 60.00% of test interactions" in out
    assert out.splitlines()[-1].startswith("time: load ")


def test_synthetic_config_with_overrides(capsys):
    code, out, err = run_cli(capsys, "data", "--config", "configs/quickstart.yaml", "--set",
                             "data.synthetic.num_users=50", "data.synthetic.num_items=400",
                             "data.synthetic.num_interactions=1000")
    assert code == 0, err
    assert "rows: 1,000 read, 0 skipped" in out


def test_bad_row_is_one_line_naming_file_and_line(tmp_path, capsys):
    data = tmp_path / "bad.csv"
    data.write_text("user_id,item_id,timestamp\na,x,1\nb,y\n")
    code, out, err = run_cli(capsys, "data", "--config", _config(tmp_path, f"data:\n  source: csv\n  path: {data}\n"))
    assert code == 2 and out == ""
    assert err == f"tfrs-irns data: error: {data}, line 3: expected 3 columns, found 2\n"


@pytest.mark.parametrize("body,message", [
    ("data:\n  source: csv\n  path: /nonexistent/e.csv\n", "/nonexistent/e.csv: no such file"),
    ("data:\n  source: parquet\n", "data.path: required when data.source is 'parquet'"),
    ("data:\n  sorce: csv\n", "data.sorce"),
])
def test_bad_config_is_one_line(tmp_path, capsys, body, message):
    code, out, err = run_cli(capsys, "data", "--config", _config(tmp_path, body))
    assert code == 2 and out == ""
    assert err.startswith("tfrs-irns data: error: ") and message in err and err.count("\n") == 1


def test_data_errors_name_the_config_key(tmp_path, capsys):
    """The data layer names its argument (timestamp_column); the command says the key the user wrote."""
    data = tmp_path / "events.csv"
    data.write_text("user_id,item_id\nu1,a\n")
    code, out, err = run_cli(capsys, "data", "--config", _config(tmp_path, f"data:\n  source: csv\n  path: {data}\n"))
    assert code == 2 and out == ""
    assert err == (
        f"tfrs-irns data: error: {data}: no column 'timestamp' (data.csv.timestamp_column); the header has "
        "'user_id', 'item_id'; set data.csv.timestamp_column=null to use the row order as time\n"
    )
    body = f"data:\n  source: csv\n  path: {data}\n  min_rating: 4\n  csv:\n    timestamp_column: null\n"
    code, out, err = run_cli(capsys, "data", "--config", _config(tmp_path, body))
    assert code == 2 and err == (
        "tfrs-irns data: error: data.min_rating: the csv source has no ratings (set data.csv.rating_column); "
        "set data.min_rating=null\n"
    )


def test_json_naming_a_folder_is_refused_before_loading(csv_config, capsys, tmp_path):
    code, _, err = run_cli(capsys, "data", "--config", csv_config, "--json", str(tmp_path))
    assert code == 2 and "is a folder" in err


def test_progress_prints_only_for_slow_stages():
    out = io.StringIO()
    with Progress("quick", after=5.0, out=out):
        pass
    assert out.getvalue() == ""
    with Progress("slow", after=0.05, every=0.05, out=out) as p:
        time.sleep(0.3)
    lines = out.getvalue().splitlines()
    assert len(lines) >= 3 and lines[0].startswith("slow... ") and lines[-1].startswith("slow: done in ")
    assert p.seconds >= 0.3
    with pytest.raises(ValueError, match="every"):
        Progress("x", every=0)


def test_distinct_training_pairs_with_every_copy_kept(tmp_path, capsys):
    data = tmp_path / "events.csv"
    rows = [("u1", "a", 1), ("u1", "a", 2), ("u1", "b", 3), ("u2", "a", 4), ("u2", "a", 5), ("u2", "b", 6)]
    data.write_text("user_id,item_id,timestamp\n" + "".join(f"{u},{i},{t}\n" for u, i, t in rows))
    config = _config(tmp_path, f"data:\n  source: csv\n  path: {data}\n  split: leave_last_out\n"
                               "  validation_fraction: 0\n  duplicates: keep_all\n"
                               "train:\n  early_stopping:\n    enabled: false\n")
    out_json = str(tmp_path / "s.json")
    code, _, err = run_cli(capsys, "data", "--config", config, "--json", out_json)
    assert code == 0, err
    s = json.loads(open(out_json).read())
    # (u, a) twice per user stays together in train; each user's b is their test row.
    assert s["splits"]["train"]["interactions"] == 4 and s["train_distinct_pairs"] == 2
    assert s["duplicates_kept"] and s["duplicate_rows"] == 2


def _csv(tmp_path, rows, extra="", header="user_id,item_id,timestamp"):
    data = tmp_path / "events.csv"
    data.write_text(header + "\n" + "".join(",".join(map(str, r)) + "\n" for r in rows))
    return _config(tmp_path, f"data:\n  source: csv\n  path: {data}\n{extra}")


def test_min_rating_rows_agree_with_the_interactions(tmp_path, capsys):
    """Finding 8: rows read count the rows data.min_rating drops (10 read = 4 dropped + 6 kept)."""
    rows = [(f"u{i % 3}", f"m{i}", i, 5 if i % 5 < 3 else 2) for i in range(10)]
    config = _csv(tmp_path, rows, "  min_rating: 4\n  csv:\n    rating_column: rating\n",
                  header="user_id,item_id,timestamp,rating")
    out_json = str(tmp_path / "s.json")
    code, out, err = run_cli(capsys, "data", "--config", config, "--json", out_json)
    assert code == 0, err
    s = json.loads(open(out_json).read())
    assert s["rows_read"] == 10 and s["rows_below_min_rating"] == 4 and s["interactions"] == 6
    assert "rows: 10 read, 0 skipped (data.skip_bad_rows); 4 rated below data.min_rating=4 dropped; 6 interactions kept" in out


@pytest.mark.parametrize("rows,split,warning", [
    # Temporal: the latest 20% belong to users who arrived last: no test user was seen in training.
    ([(f"u{i}", f"m{i % 4}", i) for i in range(8)] + [("u100", "m1", 100), ("u101", "m2", 101)],
     "temporal", "none of the 2 test interactions has a user seen in training"),
    # Every test item is new (the users are known): 100% cold test.
    ([(f"u{1 + i % 2}", f"m{i % 4}", i) for i in range(8)] + [("u1", "m9", 10), ("u2", "m8", 11)],
     "temporal", "test interactions have a user or item unseen in training (100% cold test"),
    ([("u1", f"m{i}", i) for i in range(10)], "random", "only 1 user in the training split"),
    ([(f"u{i}", "m1", i) for i in range(10)], "random", "only 1 item in the training split: every ranking is trivially right"),
])
def test_degenerate_splits_are_warned_about(tmp_path, capsys, caplog, rows, split, warning):
    """Finding 7: data whose metrics can only be 0 or 1 says so (data and train alike: the warning is prepare's)."""
    config = _csv(tmp_path, rows, f"  split: {split}\n  test_fraction: 0.2\n  validation_fraction: 0\n"
                       "train:\n  early_stopping:\n    enabled: false\n")
    out_json = str(tmp_path / "s.json")
    code, out, err = run_cli(capsys, "data", "--config", config, "--json", out_json)
    assert code == 0, err
    assert any(warning in w for w in json.loads(open(out_json).read())["warnings"])
    assert any(warning in r.getMessage() and r.levelname == "WARNING" for r in caplog.records)


def test_ordinary_data_has_no_warnings(csv_config, capsys, tmp_path):
    out_json = str(tmp_path / "s.json")
    assert run_cli(capsys, "data", "--config", csv_config, "--json", out_json)[0] == 0
    assert json.loads(open(out_json).read())["warnings"] == []
