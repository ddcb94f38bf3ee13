"""Is the tf.data pipeline ever the bottleneck? Pipeline vs training examples/s.

Measures, in one process on the same data (the quickstart's synthetic
default unless ``--config`` says otherwise):

* pipeline examples/s — iterating ``TrainPipeline.dataset`` alone (the
  per-epoch shuffle, gathers, prefetch), median over ``--epochs`` epochs;
* the same with an explicit (GCBS-style) epoch order;
* training examples/s — ``model.fit`` of the config's model for one epoch
  after a warm-up epoch.

    python benchmarks/pipeline.py
    python benchmarks/pipeline.py --config configs/movielens-latest-small.yaml --set data.path=../shared/data/ml-latest-small
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import tfrs_irns  # noqa: E402,F401
from tfrs_irns.batching.pipeline import TrainPipeline  # noqa: E402
from tfrs_irns.config import load_config  # noqa: E402
from tfrs_irns.data.prepare import prepare_data  # noqa: E402
from tfrs_irns.runs.build import build_model, make_optimizer  # noqa: E402


def epoch_rate(pipeline: TrainPipeline) -> float:
    start = time.perf_counter()
    n = 0
    for batch in pipeline.dataset:
        n += int(batch["user"].shape[0])
    return n / (time.perf_counter() - start)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default=str(ROOT / "configs" / "quickstart.yaml"))
    parser.add_argument("--set", nargs="+", default=[])
    parser.add_argument("--epochs", type=int, default=5)
    args = parser.parse_args(argv)

    config = load_config(args.config, args.set)
    data = prepare_data(config.data)
    pipeline = TrainPipeline(data.train.user, data.train.item, config.train.batch_size, seed=config.train.seed)
    epoch_rate(pipeline)  # warm-up
    random_rates = [epoch_rate(pipeline) for _ in range(args.epochs)]
    pipeline.set_epoch_order(np.random.default_rng(0).permutation(pipeline.num_examples))
    ordered_rates = [epoch_rate(pipeline) for _ in range(args.epochs)]
    pipeline.set_epoch_order(None)

    model = build_model(config, data)
    model.compile(optimizer=make_optimizer(config))
    model.fit(pipeline.dataset, epochs=1, verbose=0)  # warm-up: tracing
    start = time.perf_counter()
    model.fit(pipeline.dataset, epochs=1, verbose=0)
    train_rate = len(data.train) / (time.perf_counter() - start)

    pipe = statistics.median(random_rates)
    print(f"data: {len(data.train):,} training examples, batch {config.train.batch_size}, "
          f"mode {config.negatives.mode}, M = {config.negatives.num_negatives}")
    print("| what | examples/s |\n|---|---:|")
    print(f"| pipeline, random order (median of {args.epochs} epochs) | {pipe:,.0f} |")
    print(f"| pipeline, explicit order (median of {args.epochs} epochs) | {statistics.median(ordered_rates):,.0f} |")
    print(f"| training (model.fit, 1 epoch after warm-up) | {train_rate:,.0f} |")
    print(f"pipeline / training = {pipe / train_rate:.1f}x (target >= 5x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
