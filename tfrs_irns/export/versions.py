"""TF Serving's version folders: ``<base_dir>/<name>/<version>/``, published atomically.

TF Serving watches a model folder and serves the highest integer-named
subfolder, so publishing a new model is "add the next number". Two things
can go wrong: a half-written version being picked up, and a second exporter
overwriting a version the first one just published. Both are avoided the
same way: a version is written under a hidden temporary name (TF Serving
ignores non-integer names) and renamed into place at the end. A rename onto
an existing, non-empty folder fails instead of replacing it, and the loser
takes the next number.

This module knows folders, not models: :func:`write_version` takes a
callback that fills the temporary folder.
"""

from __future__ import annotations

import errno
import os
import re
import shutil
from typing import Callable

from tfrs_irns.errors import UserError

_TMP_PREFIX = ".tmp-"
# ".tmp-<version>-<pid>" and what an export writes beside it (".tmp-<version>-<pid>-sources-<random>").
_TMP_NAME = re.compile(r"^\.tmp-\d+-(\d+)(?:-|$)")


def check_name(name: str) -> None:
    """Raise ``ValueError`` unless ``name`` is one folder name (no path)."""
    if not name or name in (".", "..") or any(c in name for c in "/\\\0"):
        raise ValueError(f"name: {name!r} is not a valid model name (one folder name, e.g. 'quickstart')")


def version_dirs(model_dir: str) -> dict[int, str]:
    """Integer-named entries of ``model_dir`` (TF Serving's versions) → path."""
    out: dict[int, str] = {}
    for entry in os.listdir(model_dir):
        if entry.isascii() and entry.isdigit():
            out[int(entry)] = os.path.join(model_dir, entry)
    return out


def _publish(tmp: str, model_dir: str, attempts: int = 100) -> str:
    """Rename ``tmp`` to the next free version; never replace an existing one."""
    for _ in range(attempts):
        version = max(version_dirs(model_dir), default=0) + 1
        final = os.path.join(model_dir, str(version))
        try:
            # Another exporter's finished version is non-empty, so rename fails
            # (ENOTEMPTY/EEXIST) instead of replacing it: take the next number.
            os.rename(tmp, final)
            return final
        except OSError as exc:
            if exc.errno not in (errno.EEXIST, errno.ENOTEMPTY):
                raise
    raise UserError(f"{model_dir}: could not find a free version number after {attempts} attempts")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, someone else's
        return True
    return True


def remove_stale_tmp(model_dir: str) -> list[str]:
    """Remove the temporary folders of exports whose process is gone (killed
    mid-export), and their scratch folders; returns what was removed. A
    folder of a live exporter on this machine is left alone (the pid is in
    its name)."""
    removed = []
    for entry in sorted(os.listdir(model_dir)):
        match = _TMP_NAME.match(entry)
        if match is None:
            continue
        pid = int(match.group(1))
        if pid != os.getpid() and not _alive(pid):
            shutil.rmtree(os.path.join(model_dir, entry), ignore_errors=True)
            removed.append(entry)
    return removed


def write_version(model_dir: str, write: Callable[[str], None]) -> str:
    """Publish what ``write(folder)`` puts in a fresh folder as the next version.

    ``model_dir`` is created if needed. ``write`` gets a hidden temporary
    folder inside it (not yet existing, as ``tf.saved_model.save`` wants);
    if ``write`` or the rename fails, that folder is removed and nothing is
    published. Returns the version directory, ``<model_dir>/<version>``.
    """
    try:
        os.makedirs(model_dir, exist_ok=True)
    except OSError as exc:
        raise UserError(f"{model_dir}: cannot create the export folder ({exc.strerror})") from None
    remove_stale_tmp(model_dir)
    pending = max(version_dirs(model_dir), default=0) + 1
    tmp = os.path.join(model_dir, f"{_TMP_PREFIX}{pending}-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)  # a leftover of a crashed process with our pid
    try:
        write(tmp)
        return _publish(tmp, model_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
