"""``tfrs-irns models list | rollback``: what each published version is, and serving an older one again."""

import json
import os

import numpy as np
import pytest
import tensorflow as tf

from tfrs_irns.cli.main import main
from tfrs_irns.export.published import list_versions
from tfrs_irns.export.saved_model import METADATA_FILE, export_embeddings

# Each test here trains or starts a process (a module fixture trains once): the full suite's tier.
pytestmark = pytest.mark.slow

USERS = ["u1", "u2", "u3"]
ITEMS = [f"i{i}" for i in range(8)]


def cli(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def publish(base, seed, value):
    rng = np.random.default_rng(seed)
    meta = {"data_fingerprint": f"data{seed}", "model_fingerprint": f"model{seed}",
            "validation": {"monitor": "val_hit_rate@10", "value": value, "epoch": 1, "higher_is_better": True}}
    version = export_embeddings(rng.normal(size=(4, 3)), rng.normal(size=(9, 3)), USERS, ITEMS, base_dir=str(base),
                                name="m", k=3, metadata=meta)
    emb = version + ".embeddings"  # what export.embeddings writes beside the version
    os.makedirs(emb)
    with open(os.path.join(emb, "ids.tsv"), "w", encoding="utf-8") as fh:
        fh.write(f"seed {seed}\n")
    return version


def answers(version):
    module = tf.saved_model.load(version)
    return module.signatures["serving_default"](user_id=tf.constant(USERS))["item_ids"].numpy().astype(str)


@pytest.fixture
def model_dir(tmp_path):
    publish(tmp_path, 1, 0.25)
    publish(tmp_path, 2, 0.125)
    return tmp_path / "m"


def test_list_shows_each_version_with_its_record(model_dir, capsys):
    code, out, err = cli(capsys, "models", "list", str(model_dir))
    assert code == 0, err
    header, one, two = out.strip().splitlines()
    for column in ("version", "published (UTC)", "data", "model", "validation", "size"):
        assert column in header
    assert one.split()[0] == "1" and "data1" in one and "model1" in one and "val_hit_rate@10=0.2500" in one
    assert two.split()[0] == "2" and "val_hit_rate@10=0.1250" in two and two.endswith("served")
    assert "served" not in one
    sizes = {v.version: v.size_bytes for v in list_versions(str(model_dir))}
    on_disk = sum(os.path.getsize(os.path.join(r, f)) for r, _, fs in os.walk(model_dir / "1") for f in fs)
    assert sizes[1] == on_disk + len("seed 1\n")  # the version and its embeddings folder
    assert f"{sizes[1] / 1e6:.1f} MB" in one


def test_rollback_republishes_the_old_version_as_the_newest(model_dir, capsys):
    before = answers(str(model_dir / "1"))
    assert not np.array_equal(before, answers(str(model_dir / "2")))
    code, out, err = cli(capsys, "models", "rollback", str(model_dir), "--to", "1")
    assert code == 0, err
    assert out.strip() == f"published version 1 again as {model_dir / '3'}; TF Serving serves it now"
    assert sorted(os.listdir(model_dir)) == ["1", "1.embeddings", "2", "2.embeddings", "3", "3.embeddings"]
    np.testing.assert_array_equal(answers(str(model_dir / "3")), before)  # 3 serves what 1 served
    meta = json.loads((model_dir / "3" / METADATA_FILE).read_text())
    assert meta["rollback_of"] == 1 and meta["model_fingerprint"] == "model1" and "published" in meta
    assert (model_dir / "3.embeddings" / "ids.tsv").read_text() == "seed 1\n"
    code, out, _ = cli(capsys, "models", "list", str(model_dir))
    assert out.strip().splitlines()[-1].endswith("served, rollback of 1")
    # Rolling back to the served version publishes nothing.
    code, out, _ = cli(capsys, "models", "rollback", str(model_dir), "--to", "3")
    assert code == 0 and "already the served" in out and len([v for v in os.listdir(model_dir) if v.isdigit()]) == 3


@pytest.mark.parametrize(
    "argv, message",
    [
        (["list", "{d}/nothing"], "{d}/nothing: no such model folder"),
        (["list", "{d}/m/1"], "{d}/m/1: is a version folder; name the model folder {d}/m"),
        (["list", "{d}/empty"], "{d}/empty: holds no published versions"),
        (["rollback", "{d}/m", "--to", "7"], "{d}/m: no version 7 (it has 1, 2)"),
        (["rollback", "{d}/m", "--to", "latest"], "--to latest: expected a version number"),
        (["rollback", "{d}/nothing", "--to", "1"], "{d}/nothing: no such model folder"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(model_dir, capsys, argv, message):
    d = str(model_dir.parent)
    (model_dir.parent / "empty").mkdir()
    code, out, err = cli(capsys, "models", *[a.format(d=d) for a in argv])
    assert code == 2 and out == ""
    (line,) = err.strip().splitlines()
    assert line.startswith("tfrs-irns models: error: ") and message.format(d=d) in line
    assert sorted(v for v in os.listdir(model_dir) if v.isdigit()) == ["1", "2"]
