"""Which trigger rule separates the phrase from an unheard hour best, per seed.

    .venv/bin/python bench/trigger_rules.py [--seeds 1234 1 2 3]

Trains the default config per seed on the same data as `accuracy.py --bank` (50 real
"computer" clips, the bank from part of speech_long), then scores the held-out hour of
speech_long and the 111 held-out "computer" clips at 10 dB SNR with each rule applied to the
head's raw 80 ms scores: a moving average of k hops (the detector's smoothing_windows; the
default is 3), or the lowest of the last n averaged hops (n consecutive hops above the
threshold). For each rule it prints the FRR at the lowest threshold that gives at most 0 and
at most 1 false accept in the held-out hour: the rule's best case, chosen on the test audio
itself, so it compares rules, not the job's threshold.
"""

from __future__ import annotations

import argparse
import tempfile
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np
from accuracy import (
    HELD_OUT_SETS,
    SEEDS,
    SHARED,
    bank_setting,
    frr_at_most,
    load_test_set,
)

from waketrain.runtime.loader import load_export
from waketrain.runtime.oww_model import OwwHeadModel
from waketrain.settings import Settings
from waketrain.store.startup import start_registry
from waketrain.training.bank_use import oww_calibration_scores
from waketrain.training.config import TrainConfig, apply_overrides
from waketrain.training.evaluate import frame_positives
from waketrain.training.held_out import FRAMING_SEED, NOISY_SNR_DB
from waketrain.training.pipeline import train

Rule = Callable[[np.ndarray], np.ndarray]


def moving_average(k: int) -> Rule:
    def rule(raw: np.ndarray) -> np.ndarray:
        return np.convolve(raw, np.ones(k) / k)[: len(raw)].astype(np.float32)

    return rule


def consecutive(n: int, k: int = 1) -> Rule:
    def rule(raw: np.ndarray) -> np.ndarray:
        averaged = moving_average(k)(raw)
        lowest = averaged.copy()
        for j in range(1, n):
            lowest[j:] = np.minimum(lowest[j:], averaged[:-j])
            lowest[:j] = 0
        return lowest

    return rule


RULES: dict[str, Rule] = {
    **{f"mean of {k}": moving_average(k) for k in (1, 2, 3, 4, 5, 8, 12)},
    "2 in a row": consecutive(2),
    "3 in a row": consecutive(3),
    "2 in a row of mean 3": consecutive(2, 3),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seeds", type=int, nargs="+", default=list(SEEDS))
    args = parser.parse_args()
    test = load_test_set()
    noisy = frame_positives(test.positives, test.background, FRAMING_SEED, NOISY_SNR_DB)
    with tempfile.TemporaryDirectory() as tmp:
        registry = start_registry(Settings(data_dir=Path(tmp), admin_password="x")).registry
        hour = bank_setting(registry, 50)
        hours = hour.hours
        results = {}
        for seed in args.seeds:
            config = apply_overrides(TrainConfig(), {"seed": seed})
            export = train(registry, "computer", config, rir_dirs=[SHARED / "rir"]).export_dir
            model = load_export(export)
            assert model.score_windows is not None, "oww_head only"
            raw = replace(model.params, smoothing_windows=1)
            negatives = oww_calibration_scores(hour.streams, model.score_windows, raw)
            positives = OwwHeadModel(export / "wake_model.onnx").score_stream(noisy.audio, raw)
            results[seed] = {
                name: [
                    frr_at_most([rule(s) for s in negatives], rule(positives), noisy.spans, raw, n)
                    for n in (0, 1)
                ]
                for name, rule in RULES.items()
            }
            print(f"done: seed {seed}", flush=True)
    print(f"\nheld-out hour: {', '.join(HELD_OUT_SETS)} ({hours:.2f} h); FRR on 111 held-out "
          "clips at 10 dB; threshold chosen on the held-out audio itself\n")  # fmt: skip
    seeds = list(results)
    print(
        "| rule | " + " | ".join(f"seed {s}: FRR at 0 / 1 FA" for s in seeds) + " | mean at 0 FA |"
    )
    print("| --- |" + " ---: |" * (len(seeds) + 1))
    for name in RULES:
        cells = [f"{results[s][name][0]:.1%} / {results[s][name][1]:.1%}" for s in seeds]
        mean = np.mean([results[s][name][0] for s in seeds])
        print(f"| {name} | " + " | ".join(cells) + f" | {mean:.1%} |")


if __name__ == "__main__":
    main()
