"""`benchmarks/memory_fit.py`: the grid, the least-squares fit and the per-GiB figures, on synthetic points.

The oracle is numpy's own least squares on the same design, and a hand-made exact model; no timing, no training."""

from __future__ import annotations

import importlib.util
import os
import sys

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _module():
    sys.path.insert(0, os.path.join(ROOT, "benchmarks"))  # memory_fit imports its siblings _report and streaming
    spec = importlib.util.spec_from_file_location("memory_fit", os.path.join(ROOT, "benchmarks", "memory_fit.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


memory_fit = _module()


def test_grid_varies_one_thing_at_a_time_around_the_middle_values():
    points = memory_fit.grid([1, 2, 4], [10, 20, 40], [100, 200])
    assert points[0] == {"rows": 2, "users": 20, "items": 200}
    assert points == [
        {"rows": 2, "users": 20, "items": 200},
        {"rows": 1, "users": 20, "items": 200},
        {"rows": 4, "users": 20, "items": 200},
        {"rows": 2, "users": 10, "items": 200},
        {"rows": 2, "users": 40, "items": 200},
        {"rows": 2, "users": 20, "items": 100},
    ]


def test_an_exact_linear_model_is_recovered_with_zero_residuals():
    # 700 MiB + 300 B/row + 500 B/user + 4096 B/item, exactly.
    points = memory_fit.grid([250_000, 500_000, 1_000_000], [20_000, 100_000, 400_000], [10_000, 100_000, 400_000])
    for p in points:
        p["peak_rss_mb"] = 700 + (300 * p["rows"] + 500 * p["users"] + 4096 * p["items"]) / 2**20
    model = memory_fit.fit(points)
    assert model["base_mb"] == pytest.approx(700)
    assert model["bytes_per_row"] == pytest.approx(300)
    assert model["bytes_per_user"] == pytest.approx(500)
    assert model["bytes_per_item"] == pytest.approx(4096)
    assert model["max_abs_residual_mb"] == pytest.approx(0, abs=1e-6)

    figures = memory_fit.per_gib(model, points[0], 24.0, 0.0)
    assert figures["rows_per_gb"] == pytest.approx(2**30 / 300)
    assert figures["items_per_gb"] == pytest.approx(2**30 / 4096)
    # 24 GiB less the base and the centre's 100k users and 100k items, over 300 B per row.
    budget = 24 * 2**30 - 700 * 2**20 - 500 * 100_000 - 4096 * 100_000
    assert figures["max_rows_in_24gb"] == pytest.approx(budget / 300)
    assert figures["max_items_in_24gb"] == pytest.approx((24 * 2**30 - 700 * 2**20 - 500 * 100_000 - 300 * 500_000) / 4096)


def test_noisy_points_match_numpy_least_squares_and_report_their_residuals():
    rng = np.random.default_rng(3)
    points = memory_fit.grid([1e5, 2e5, 4e5], [1e4, 5e4, 2e5], [1e3, 1e4, 1e5])
    for p in points:
        p["peak_rss_mb"] = 500 + 2e-4 * p["rows"] + 1e-3 * p["users"] + rng.normal(0, 5)
    x = np.array([[1, p["rows"], p["users"], p["items"]] for p in points], dtype=float)
    y = np.array([p["peak_rss_mb"] for p in points])
    coef = np.linalg.lstsq(x, y, rcond=None)[0]
    model = memory_fit.fit(points)
    assert model["base_mb"] == pytest.approx(coef[0])
    assert [model["bytes_per_row"], model["bytes_per_user"], model["bytes_per_item"]] == pytest.approx(coef[1:] * 2**20)
    np.testing.assert_allclose(model["residuals_mb"], y - x @ coef, atol=1e-9)
    assert model["max_abs_residual_mb"] == pytest.approx(np.abs(y - x @ coef).max())


def test_a_cost_that_is_not_positive_has_no_limit():
    # Streaming: rows cost nothing measurable (here slightly negative): no rows-per-GiB figure, no row ceiling.
    model = {"base_mb": 800.0, "bytes_per_row": -2.0, "bytes_per_user": 600.0, "bytes_per_item": 5000.0}
    figures = memory_fit.per_gib(model, {"rows": 10**6, "users": 10**5, "items": 10**5}, 24.0, 0.0)
    assert figures["rows_per_gb"] is None and figures["max_rows_in_24gb"] is None
    assert figures["users_per_gb"] == pytest.approx(2**30 / 600)
    # The row term enters the others' budget as fitted (-2 MB at 1M rows), not clipped.
    assert figures["max_users_in_24gb"] == pytest.approx((24 * 2**30 - 800 * 2**20 + 2 * 10**6 - 5000 * 10**5) / 600)


def test_the_known_score_matrix_is_taken_out_before_the_fit_and_counted_in_the_budget():
    # S saturates with the items (the ranking's 256 MiB cap): a line through the raw peaks would bend;
    # with S subtracted the rest is exactly linear again.
    points = memory_fit.grid([1e5, 2e5, 4e5], [1e4, 5e4, 2e5], [1e4, 1e5, 4e5])
    for p in points:
        p["eval_scores_mb"] = min(1024 * p["items"] * 4, 256 * 2**20) / 2**20
        p["peak_rss_mb"] = 600 + (200 * p["rows"] + 400 * p["users"] + 800 * p["items"]) / 2**20 + p["eval_scores_mb"]
    model = memory_fit.fit(points)
    assert [model["base_mb"], model["bytes_per_row"], model["bytes_per_user"], model["bytes_per_item"]] == pytest.approx(
        [600, 200, 400, 800]
    )
    assert model["max_abs_residual_mb"] == pytest.approx(0, abs=1e-6)
    held_out = {"rows": 3_200_000, "users": 50_000, "items": 100_000, "eval_scores_mb": 256.0}
    assert memory_fit.predict(model, held_out) == pytest.approx(600 + 256 + (200 * 3.2e6 + 400 * 5e4 + 800 * 1e5) / 2**20)
    figures = memory_fit.per_gib(model, points[0], 24.0, 256.0)
    assert figures["max_users_in_24gb"] == pytest.approx(
        (24 * 2**30 - (600 + 256) * 2**20 - 200 * 2e5 - 800 * 1e5) / 400
    )


@pytest.mark.slow
def test_the_score_matrix_follows_the_rankings_chunk_rule():
    # 1024 users x 10k items x 4 B; past 65,536 items the chunk shrinks to stay at 256 MiB; few test users: fewer rows.
    assert memory_fit.score_chunk_mb(10_000, 5_000) == pytest.approx(1024 * 10_000 * 4 / 2**20)
    assert memory_fit.score_chunk_mb(400_000, 5_000) == pytest.approx((2**28 // 1_600_000) * 400_000 * 4 / 2**20)
    assert memory_fit.score_chunk_mb(400_000, 5_000) <= 256
    assert memory_fit.score_chunk_mb(10_000, 100) == pytest.approx(100 * 10_000 * 4 / 2**20)


def test_points_that_do_not_vary_each_quantity_are_refused():
    points = [{"rows": r, "users": 10, "items": 5, "peak_rss_mb": float(r)} for r in (1, 2, 3, 4)]
    with pytest.raises(ValueError, match="vary rows, users and items independently"):
        memory_fit.fit(points)
