"""TF Serving version folders: numbering, atomic publication, no clobbering."""

import errno
import os
import re

import pytest

import tfrs_irns  # noqa: F401
from tfrs_irns.errors import UserError
from tfrs_irns.export.versions import check_name, version_dirs, write_version


def fill(text):
    """A ``write`` callback that creates the folder with one file, like a SavedModel."""

    def write(folder):
        os.makedirs(folder)
        with open(os.path.join(folder, "saved_model.pb"), "w") as fh:
            fh.write(text)

    return write


def published_v1(tmp_path):
    model_dir = tmp_path / "unit"
    path = write_version(str(model_dir), fill("version one"))
    assert path == str(model_dir / "1")
    return model_dir, (model_dir / "1" / "saved_model.pb").read_bytes()


def test_versions_count_up_from_1(tmp_path):
    model_dir = tmp_path / "saved_models" / "m"  # created, parents too
    assert write_version(str(model_dir), fill("a")) == str(model_dir / "1")
    assert write_version(str(model_dir), fill("b")) == str(model_dir / "2")
    assert sorted(os.listdir(model_dir)) == ["1", "2"]  # no temporary folder left
    assert (model_dir / "1" / "saved_model.pb").read_text() == "a"
    assert (model_dir / "2" / "saved_model.pb").read_text() == "b"


def test_version_dirs_lists_integer_folders_only(tmp_path):
    for entry in ["1", "10", "2", ".tmp-3-99", "latest", "٣"]:  # '٣': a non-ASCII digit
        (tmp_path / entry).mkdir()
    assert version_dirs(str(tmp_path)) == {n: str(tmp_path / str(n)) for n in (1, 2, 10)}
    # The next version follows the highest number, not the count.
    assert write_version(str(tmp_path), fill("x")) == str(tmp_path / "11")


def test_writer_gets_a_hidden_folder_that_does_not_exist_yet(tmp_path):
    seen = []

    def write(folder):
        seen.append((os.path.basename(folder), os.path.exists(folder)))
        fill("x")(folder)

    write_version(str(tmp_path), write)
    name, existed = seen[0]
    assert name.startswith(".") and not existed and not name.isdigit()


def test_crash_before_rename_leaves_no_version(tmp_path, monkeypatch):
    model_dir, before = published_v1(tmp_path)

    def boom(src, dst):
        raise OSError(errno.EIO, "simulated crash")

    monkeypatch.setattr(os, "rename", boom)
    with pytest.raises(OSError, match="simulated crash"):
        write_version(str(model_dir), fill("version two"))
    assert sorted(os.listdir(model_dir)) == ["1"]
    assert (model_dir / "1" / "saved_model.pb").read_bytes() == before


def test_crash_while_writing_leaves_no_version(tmp_path):
    model_dir, before = published_v1(tmp_path)

    def half_write(folder):
        fill("half")(folder)
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        write_version(str(model_dir), half_write)
    assert sorted(os.listdir(model_dir)) == ["1"]
    assert (model_dir / "1" / "saved_model.pb").read_bytes() == before


def test_a_version_taken_meanwhile_is_not_clobbered(tmp_path, monkeypatch):
    """Another exporter publishes version 2 while we write: we become 3."""
    model_dir, _ = published_v1(tmp_path)
    real_rename = os.rename
    calls = []

    def racing_rename(src, dst):
        if not calls:
            (model_dir / "2").mkdir()
            (model_dir / "2" / "saved_model.pb").write_text("the other exporter's model")
        calls.append(dst)
        real_rename(src, dst)

    monkeypatch.setattr(os, "rename", racing_rename)
    path = write_version(str(model_dir), fill("ours"))
    assert path == str(model_dir / "3")
    assert calls == [str(model_dir / "2"), str(model_dir / "3")]
    assert (model_dir / "2" / "saved_model.pb").read_text() == "the other exporter's model"
    assert (model_dir / "3" / "saved_model.pb").read_text() == "ours"
    assert sorted(os.listdir(model_dir)) == ["1", "2", "3"]


def test_no_free_version_after_the_attempts(tmp_path, monkeypatch):
    def always_taken(src, dst):
        raise OSError(errno.ENOTEMPTY, "taken")

    monkeypatch.setattr(os, "rename", always_taken)
    with pytest.raises(UserError, match=r"could not find a free version number after 100 attempts"):
        write_version(str(tmp_path / "m"), fill("x"))
    assert os.listdir(tmp_path / "m") == []


def test_model_dir_under_a_file(tmp_path):
    blocker = tmp_path / "saved_models"
    blocker.write_text("not a folder")
    with pytest.raises(UserError, match=re.escape(str(blocker / "m")) + ": cannot create the export folder"):
        write_version(str(blocker / "m"), fill("x"))


@pytest.mark.parametrize("name", ["a/b", "..", ".", "", "a\\b", "nul\0"])
def test_invalid_model_names(name):
    with pytest.raises(ValueError, match=re.escape(f"name: {name!r} is not a valid model name")):
        check_name(name)


@pytest.mark.parametrize("name", ["quickstart", "ml-1m v2", "ünïcode", ".hidden"])
def test_valid_model_names(name):
    check_name(name)



@pytest.mark.subprocess
def test_the_next_export_removes_temporary_folders_of_dead_exporters(tmp_path):
    import subprocess
    import sys

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead_pid = int(dead.stdout)  # that process has exited
    model_dir = tmp_path / "m"
    (model_dir / f".tmp-1-{dead_pid}").mkdir(parents=True)
    (model_dir / f".tmp-1-{dead_pid}" / "saved_model.pb").write_text("half", encoding="utf-8")
    alive = model_dir / f".tmp-1-{os.getppid()}"  # a live process's export in progress
    alive.mkdir()
    assert write_version(str(model_dir), fill("v1")).endswith(os.sep + "1")
    assert sorted(os.listdir(model_dir)) == sorted(["1", alive.name])


def test_the_scratch_folders_of_a_killed_export_are_removed_too(tmp_path):
    """Finding 10 of issue 25: kill -9 mid-export left tfrs_irns-export-* in the system temp folder."""
    import subprocess
    import sys

    dead_pid = int(subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                                  capture_output=True, text=True).stdout)
    model_dir = tmp_path / "m"
    scratch = model_dir / f".tmp-1-{dead_pid}-sources-abc123"
    scratch.mkdir(parents=True)
    (scratch / "users.txt").write_text("u1\n", encoding="utf-8")
    live = model_dir / f".tmp-1-{os.getppid()}-sources-xyz"  # a live exporter's scratch folder stays
    live.mkdir()
    other = model_dir / ".tmp-notes"  # not an export's: not ours to remove
    other.mkdir()
    write_version(str(model_dir), fill("v1"))
    assert sorted(os.listdir(model_dir)) == sorted(["1", live.name, other.name])


def test_an_export_writes_its_scratch_files_inside_the_model_folder(tmp_path, monkeypatch):
    """The id files the lookup tables start from are written beside the version's temporary
    folder, where the next export cleans them after a kill, not in the system temp folder."""
    import numpy as np

    from tfrs_irns.export import saved_model

    written = []
    real = saved_model._write_lines
    monkeypatch.setattr(saved_model, "_write_lines", lambda path, lines: (written.append(path), real(path, lines)))
    system_tmp = tmp_path / "system-tmp"
    system_tmp.mkdir()
    monkeypatch.setattr(saved_model.tempfile, "tempdir", str(system_tmp))
    rng = np.random.default_rng(0)
    version = saved_model.export_embeddings(rng.normal(size=(3, 2)), rng.normal(size=(4, 2)), ["a", "b"],
                                            ["x", "y", "z"], base_dir=str(tmp_path / "saved"), name="m", k=2)
    model_dir = tmp_path / "saved" / "m"
    assert len(written) == 2
    for path in written:
        assert os.path.dirname(os.path.dirname(path)) == str(model_dir)
        assert os.path.basename(os.path.dirname(path)).startswith(".tmp-1-")
    assert not [e for e in os.listdir(system_tmp) if e.startswith("tfrs_irns")]  # (autograph writes its own there)
    assert sorted(os.listdir(model_dir)) == ["1"] and version == str(model_dir / "1")
