"""``tfrs-irns data`` with data.streaming: the report comes from the shards, by hand and against the in-memory split."""

import json

import numpy as np

from tfrs_irns.cli.main import main
from tfrs_irns.config import from_dict
from tfrs_irns.data.prepare import prepare_data


def test_the_data_command_reports_a_streamed_split_from_its_shards(tmp_path, capsys):
    # 4 users, leave_last_out: each user's last row is test, the one before validation (u4 has one row: train).
    rows = [("u1", "a", 1), ("u1", "b", 2), ("u1", "c", 3), ("u1", "d", 4), ("u2", "a", 1), ("u2", "c", 2),
            ("u2", "e", 3), ("u3", "b", 1), ("u3", "a", 2), ("u3", "f", 3), ("u4", "a", 5)]
    path = tmp_path / "log.csv"
    path.write_text("user_id,item_id,timestamp\n" + "".join(f"{u},{i},{t}\n" for u, i, t in rows))
    data = {"source": "csv", "path": str(path), "split": "leave_last_out", "streaming": True,
            "duplicates": "keep_all", "cache_dir": str(tmp_path / "cache")}
    config = tmp_path / "c.yaml"
    config.write_text(json.dumps({"data": data, "train": {"early_stopping": {"enabled": False}}}))
    out_json = tmp_path / "report.json"

    assert main(["data", "--config", str(config), "--json", str(out_json)]) == 0
    out = capsys.readouterr().out
    report = json.loads(out_json.read_text())
    # By hand: train u1 a b, u2 a, u3 b, u4 a (5 rows; users u1-u4, items a b); validation u1 c, u2 c,
    # u3 a; test u1 d, u2 e, u3 f (items unseen in training: 0 known items).
    assert report["splits"] == {
        "train": {"interactions": 5, "files": 5, "users": 4, "items": 2},
        "validation": {"interactions": 3, "files": 3, "users": 3, "items": 1},
        "test": {"interactions": 3, "files": 3, "users": 3, "items": 0},
    }
    assert (report["users"], report["items"], report["rows_read"], report["reused"]) == (4, 2, 11, False)
    assert "test:                  3 interactions in 3 files, 3 users, 0 items (known to training)" in out
    # The same split as the in-memory path (leave_last_out, no repeated pair).
    memory = prepare_data(from_dict({"data": dict(data, streaming=False)}).data)
    for name in ("train", "validation", "test"):
        part = getattr(memory, name)
        assert report["splits"][name]["interactions"] == len(part)
        assert report["splits"][name]["users"] == np.count_nonzero(np.unique(part.user))
        assert report["splits"][name]["items"] == np.count_nonzero(np.unique(part.item))
    # A second look reuses the shards.
    assert main(["data", "--config", str(config)]) == 0
    assert "(reused)" in capsys.readouterr().out
