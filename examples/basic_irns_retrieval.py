"""Basic retrieval with In-batch Random Negative Sampling (IRNS).

This is the TensorFlow Recommenders basic-retrieval tutorial with one change:
the task. TFRS's ``tfrs.tasks.Retrieval`` scores each user against the other
movies *of the same batch* only. Those in-batch negatives are popular movies
(batches are drawn from the data, and the data is dominated by hits), so the
model never learns to push down the long tail it rarely sees.
``IRNSRetrieval`` adds, at every step, ``M`` movies drawn at random from the
whole catalogue, embedded by the same movie tower and shared by every row of
the batch (eBay, arXiv 2102.06156: 600 positives and 3000 random negatives per
step).

Run it:

    python examples/basic_irns_retrieval.py                      # MovieLens latest-small
    python examples/basic_irns_retrieval.py --synthetic --epochs 3

It reads ``ratings.csv`` of ml-latest-small from ``--data`` (by default the
shared copy beside the checkout) and falls back to a small synthetic table
with planted taste clusters when the file is absent.
"""

from __future__ import annotations

import tfrs_irns  # noqa: F401,I001  (first: pins Keras 2, which TFRS needs)

import argparse
import csv
import sys
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
import tensorflow as tf
import tensorflow_recommenders as tfrs

from tfrs_irns.tasks import IRNSRetrieval

DEFAULT_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "ml-latest-small"


# --------------------------------------------------------------------------
# 1. The data: (user id, movie id) pairs, as strings.
#
# Like the TFRS tutorial we treat every rating as implicit feedback: the user
# watched the movie. Ids stay strings; the towers' StringLookup layers turn
# them into indices.
# --------------------------------------------------------------------------


def load_ratings(data_dir: Path, max_rows: Optional[int]) -> tuple[np.ndarray, np.ndarray]:
    """``(user_ids, movie_ids)`` from ``data_dir/ratings.csv``, first ``max_rows`` rows."""
    users, movies = [], []
    with open(data_dir / "ratings.csv", newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            users.append(row["userId"])
            movies.append(row["movieId"])
            if max_rows is not None and len(users) >= max_rows:
                break
    return np.array(users), np.array(movies)


def synthetic_ratings(max_rows: Optional[int], seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A small table with structure to find: 8 taste clusters of users, each
    watching mostly (85%) the 25 movies of its own cluster."""
    rng = np.random.default_rng(seed)
    num_users, num_movies, clusters = 200, 400, 8
    n = min(max_rows or 12000, 12000)
    user = rng.integers(0, num_users, n)
    own = rng.random(n) < 0.85
    in_cluster = (user % clusters) * 25 + rng.integers(0, 25, n)
    movie = np.where(own, in_cluster, rng.integers(0, num_movies, n))
    return np.char.add("u", user.astype(str)), np.char.add("m", movie.astype(str))


# --------------------------------------------------------------------------
# 2. The model: two towers and the IRNS task.
# --------------------------------------------------------------------------


class MovielensModel(tfrs.Model):
    """The TFRS tutorial's model; only the task differs."""

    def __init__(self, user_model: tf.keras.Model, movie_model: tf.keras.Model, task: IRNSRetrieval) -> None:
        super().__init__()
        self.user_model = user_model
        self.movie_model = movie_model
        self.task = task

    def compute_loss(self, features: dict[str, tf.Tensor], training: bool = False) -> tf.Tensor:
        user_embeddings = self.user_model(features["user_id"])
        movie_embeddings = self.movie_model(features["movie_id"])
        # `candidate_ids` lets the task find accidental hits (a sampled movie
        # that is the row's own positive) and look up logQ probabilities.
        return self.task(
            user_embeddings, movie_embeddings, candidate_ids=features["movie_id"], training=training
        )


def build_model(
    unique_user_ids: np.ndarray,
    unique_movie_ids: np.ndarray,
    train_movies: np.ndarray,
    embedding_dim: int,
    num_negatives: int,
    seed: int,
) -> MovielensModel:
    # The towers: StringLookup maps an id to an index (0 for unknown ids,
    # then 1..n in vocabulary order), Embedding maps the index to a vector.
    user_model = tf.keras.Sequential(
        [
            tf.keras.layers.StringLookup(vocabulary=unique_user_ids, mask_token=None),
            tf.keras.layers.Embedding(len(unique_user_ids) + 1, embedding_dim),
        ]
    )
    movie_model = tf.keras.Sequential(
        [
            tf.keras.layers.StringLookup(vocabulary=unique_movie_ids, mask_token=None),
            tf.keras.layers.Embedding(len(unique_movie_ids) + 1, embedding_dim),
        ]
    )

    # IRNS draws item *indices* 1..N in-graph. The movie tower takes raw ids,
    # so we hand the task the catalogue in index order: entry k is the id of
    # index k (entry 0, the unknown bucket, is never sampled).
    catalogue = np.concatenate([["[UNK]"], unique_movie_ids])

    # logQ needs each movie's share of the training positives: in-batch
    # negatives are drawn from it, which over-penalises popular movies unless
    # corrected (see IRNSRetrieval's docstring).
    counts = np.bincount(np.searchsorted(unique_movie_ids, train_movies) + 1, minlength=len(catalogue))
    task = IRNSRetrieval(
        movie_model,
        num_items=len(unique_movie_ids),
        mode="mixed",
        num_negatives=num_negatives,
        item_probabilities=counts / counts.sum(),
        candidate_ids_table=catalogue,
        seed=seed,
    )
    return MovielensModel(user_model, movie_model, task)


# --------------------------------------------------------------------------
# 3. Evaluation: a brute-force top-k over every movie.
# --------------------------------------------------------------------------


def hit_rate(
    model: MovielensModel, unique_movie_ids: np.ndarray, test_users: np.ndarray, test_movies: np.ndarray, k: int
) -> float:
    """Share of held-out (user, movie) pairs whose movie is in the user's top k."""
    index = tfrs.layers.factorized_top_k.BruteForce(model.user_model, k=k)
    movies = tf.data.Dataset.from_tensor_slices(unique_movie_ids).batch(1024)
    index.index_from_dataset(movies.map(lambda ids: (ids, model.movie_model(ids))))
    users = np.unique(test_users)
    top = {}
    for start in range(0, len(users), 512):
        chunk = users[start : start + 512]
        _, ids = index(tf.constant(chunk))
        top.update(zip(chunk, (set(row) for row in ids.numpy().astype(str))))
    return float(np.mean([movie in top[user] for user, movie in zip(test_users, test_movies)]))


def main(argv: Optional[Sequence[str]] = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--data", type=Path, default=None,
        help=f"folder with ratings.csv (default {DEFAULT_DATA} if it exists, else synthetic data)",
    )
    parser.add_argument("--synthetic", action="store_true", help="use the synthetic table even if data exists")
    parser.add_argument("--max-rows", type=int, default=None, help="read at most this many ratings")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=600, help="B: positives per step")
    parser.add_argument("--num-negatives", type=int, default=3000, help="M: random negatives per step")
    parser.add_argument("--embedding-dim", type=int, default=32)
    parser.add_argument("--learning-rate", type=float, default=0.1)
    parser.add_argument("--k", type=int, default=100, help="hit rate cut-off")
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args(argv)
    tf.keras.utils.set_random_seed(args.seed)

    if args.data is not None and not (args.data / "ratings.csv").is_file():
        parser.error(f"--data {args.data}: no ratings.csv there")  # asked for data: never fall back silently
    data = args.data or DEFAULT_DATA
    if not args.synthetic and (data / "ratings.csv").is_file():
        users, movies = load_ratings(data, args.max_rows)
        source = str(data / "ratings.csv")
    else:
        users, movies = synthetic_ratings(args.max_rows, args.seed)
        source = "synthetic clusters"

    # A random 80/20 split, as in the TFRS tutorial. The catalogue is every
    # movie in the table, so held-out movies can be retrieved too.
    order = np.random.default_rng(args.seed).permutation(len(users))
    cut = int(0.8 * len(order))
    train, test = order[:cut], order[cut:]
    unique_user_ids = np.unique(users[train])
    unique_movie_ids = np.unique(movies)
    print(f"{source}: {len(users):,} ratings, {len(unique_user_ids):,} users, {len(unique_movie_ids):,} movies")

    model = build_model(
        unique_user_ids, unique_movie_ids, movies[train], args.embedding_dim, args.num_negatives, args.seed
    )
    # The IRNS loss is a mean over the batch, where TFRS's Retrieval sums: each
    # embedding row's gradient is ~B times smaller than in the TFRS tutorial.
    # Keras's Adagrad starts its accumulator at 0.1, which would swamp such
    # small gradients and stall training; a tiny initial accumulator makes
    # Adagrad's steps independent of the loss scale again.
    model.compile(
        optimizer=tf.keras.optimizers.Adagrad(learning_rate=args.learning_rate, initial_accumulator_value=1e-6)
    )

    train_ds = (
        tf.data.Dataset.from_tensor_slices({"user_id": users[train], "movie_id": movies[train]})
        .shuffle(len(train), seed=args.seed, reshuffle_each_iteration=True)
        .batch(args.batch_size)
    )
    history = model.fit(train_ds, epochs=args.epochs, verbose=2)
    losses = [float(x) for x in history.history["loss"]]

    rate = hit_rate(model, unique_movie_ids, users[test], movies[test], args.k)
    chance = min(1.0, args.k / len(unique_movie_ids))
    print(f"hit rate@{args.k} on {len(test):,} held-out ratings: {rate:.3f} (chance {chance:.3f})")

    # Recommendations for one user, as in the tutorial.
    index = tfrs.layers.factorized_top_k.BruteForce(model.user_model, k=5)
    index.index_from_dataset(
        tf.data.Dataset.from_tensor_slices(unique_movie_ids).batch(1024).map(lambda ids: (ids, model.movie_model(ids)))
    )
    _, titles = index(tf.constant([unique_user_ids[0]]))
    print(f"top 5 for user {unique_user_ids[0]}: {[t.decode() for t in titles[0].numpy()]}")
    return {"losses": losses, "hit_rate": rate, "chance": chance, "source": source}


if __name__ == "__main__":
    main(sys.argv[1:])
