"""What ``tfrs-irns data`` prints: the data layer's summary in the config's words."""

from __future__ import annotations

from typing import Any

from tfrs_irns.errors import reword
from tfrs_irns.runs.wording import DATA_KEYS


def format_summary(s: dict[str, Any]) -> str:
    """The summary of :func:`~tfrs_irns.data.summary.data_report` as the lines ``tfrs-irns data`` prints."""
    sp = s["splits"]
    lines = [
        reword(s["description"], ["duplicates", "min_rating"], DATA_KEYS),
        f"rows: {s['rows_read']:,} read, {s['rows_skipped']:,} skipped (data.skip_bad_rows); "
        + (f"{s['rows_below_min_rating']:,} rated below data.min_rating={s['min_rating']:g} dropped; "
           if s.get("min_rating") is not None else "")
        + f"{s['interactions']:,} interactions kept; {s['duplicate_rows']:,} repeated (user, item) rows "
        + ("kept (data.duplicates=keep_all)" if s["duplicates_kept"] else "dropped (data.duplicates)"),
        f"users: {s['users']:,}   items: {s['items']:,} interacted ({s['catalogue']:,} in the item table)",
    ]
    for name in ("train", "validation", "test"):
        lines.append(
            f"{name + ':':<11} {sp[name]['interactions']:>12,} interactions, {sp[name]['users']:,} users, "
            f"{sp[name]['items']:,} items (known to training)"
        )
    lines += [
        f"sparsity: {100 * s['sparsity']:.4f}% of the {s['train_users']:,} x {s['train_items']:,} training "
        f"matrix is empty ({s['train_distinct_pairs']:,} distinct user-item pairs)",
        f"head: the top 1% of items ({s['top1pct_items']:,}) hold {100 * s['top1pct_share']:.1f}% "
        "of the training interactions",
        f"cold test: {100 * s['cold_test_share']:.2f}% of test interactions have a user or item unseen in "
        f"training (users {100 * s['cold_test_user_share']:.2f}%, items {100 * s['cold_test_item_share']:.2f}%)",
    ]
    times = s.get("seconds")
    if times:
        lines.append("time: " + ", ".join(f"{k} {v:.2f} s" for k, v in times.items()))
    return "\n".join(lines)


def format_streamed_summary(s: dict[str, Any]) -> str:
    """:func:`~tfrs_irns.data.streaming.streamed_summary` as the lines ``tfrs-irns data`` prints."""
    lines = [
        s["description"],
        f"shards: {s['cache']} ({'reused' if s['reused'] else 'built now'}); {s['rows_read']:,} rows read",
        f"users: {s['users']:,}   items: {s['items']:,} (in training)",
    ]
    for name, part in s["splits"].items():
        lines.append(
            f"{name + ':':<11} {part['interactions']:>12,} interactions in {part['files']} files, "
            f"{part['users']:,} users, {part['items']:,} items (known to training)"
        )
    return "\n".join(lines)
