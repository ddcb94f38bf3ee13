"""The published versions of a model folder: what each one is, and rolling back to one.

TF Serving serves the highest version number of ``<base_dir>/<name>/``, so
"which model is live" is a folder listing, and "go back to version 3" means
publishing a copy of 3 as the next number (deleting the newer versions would
lose them, and renumbering would race TF Serving's poller). The copy is
written under a hidden name and renamed into place
(:func:`~tfrs_irns.export.versions.write_version`), so TF Serving switches
atomically from the bad version to the copy; its embeddings folder (and ANN
index) follows it, and its metadata records ``rollback_of``.
"""

from __future__ import annotations

import datetime
import json
import os
import shutil
from dataclasses import dataclass
from typing import Any, Optional

from tfrs_irns.errors import UserError
from tfrs_irns.export.embeddings import embeddings_dir
from tfrs_irns.export.saved_model import METADATA_FILE
from tfrs_irns.export.versions import version_dirs, write_version


@dataclass
class VersionInfo:
    """One version folder and what its metadata says."""

    version: int
    path: str
    metadata: dict[str, Any]
    size_bytes: int  # the version folder and its embeddings folder

    @property
    def created(self) -> str:
        return str(self.metadata.get("published") or self.metadata.get("created") or "?")

    @property
    def validation(self) -> str:
        val = self.metadata.get("validation") or {}
        if val.get("monitor") is None or val.get("value") is None:
            return "-"
        return f"{val['monitor']}={float(val['value']):.4f}"


def folder_size(path: str) -> int:
    """Bytes of the files under ``path`` (0 when it does not exist)."""
    total = 0
    for root, _, files in os.walk(path):
        for name in files:
            try:
                total += os.path.getsize(os.path.join(root, name))
            except OSError:  # removed while we walked
                pass
    return total


def _read_metadata(version_dir: str) -> dict[str, Any]:
    try:
        with open(os.path.join(version_dir, METADATA_FILE), encoding="utf-8") as fh:
            meta = json.load(fh)
        return meta if isinstance(meta, dict) else {}
    except (OSError, ValueError):
        return {}


def _versions(model_dir: str) -> dict[int, str]:
    if not os.path.exists(model_dir):
        raise UserError(f"{model_dir}: no such model folder (expected a folder of version folders, e.g. saved_models/quickstart)")
    if not os.path.isdir(model_dir):
        raise UserError(f"{model_dir}: is not a folder")
    versions = version_dirs(model_dir)
    if not versions:
        parent = os.path.dirname(os.path.normpath(model_dir))
        if os.path.basename(os.path.normpath(model_dir)).isdigit() and version_dirs(parent or "."):
            raise UserError(f"{model_dir}: is a version folder; name the model folder {parent or '.'}")
        raise UserError(f"{model_dir}: holds no published versions (integer-named folders)")
    return versions


def list_versions(model_dir: str) -> list[VersionInfo]:
    """Every published version under ``model_dir``, oldest first."""
    return [
        VersionInfo(v, path, _read_metadata(path), folder_size(path) + folder_size(embeddings_dir(path)))
        for v, path in sorted(_versions(model_dir).items())
    ]


def format_versions(versions: list[VersionInfo]) -> str:
    """A table: version, time, data and model fingerprints, validation metric, size; the served one marked."""
    served = max(v.version for v in versions)
    header = ("version", "published (UTC)", "data", "model", "validation", "size", "")
    rows = [header]
    for v in versions:
        notes = []
        if v.version == served:
            notes.append("served")
        if v.metadata.get("rollback_of") is not None:
            notes.append(f"rollback of {v.metadata['rollback_of']}")
        rows.append((
            str(v.version), v.created, str(v.metadata.get("data_fingerprint") or "-")[:12],
            str(v.metadata.get("model_fingerprint") or "-")[:12], v.validation, f"{v.size_bytes / 1e6:.1f} MB",
            ", ".join(notes),
        ))
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows)


def rollback(model_dir: str, to: int) -> Optional[str]:
    """Publish a copy of version ``to`` as the newest version; returns its
    folder, or None when ``to`` is already the served (highest) version."""
    versions = _versions(model_dir)
    if to not in versions:
        have = ", ".join(str(v) for v in sorted(versions))
        raise UserError(f"{model_dir}: no version {to} (it has {have})")
    if to == max(versions):
        return None
    source = versions[to]
    now = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")

    def write(tmp: str) -> None:
        shutil.copytree(source, tmp)
        meta = _read_metadata(source)
        meta.update(rollback_of=to, published=now)
        os.makedirs(os.path.dirname(os.path.join(tmp, METADATA_FILE)), exist_ok=True)
        with open(os.path.join(tmp, METADATA_FILE), "w", encoding="utf-8") as fh:
            json.dump(meta, fh, indent=2)

    published = write_version(model_dir, write)
    if os.path.isdir(embeddings_dir(source)):
        shutil.copytree(embeddings_dir(source), embeddings_dir(published))
    return published
