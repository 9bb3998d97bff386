"""Glow on scikit-learn's 8x8 digits: bits per dimension, samples, temperatures, interpolation.

Run: python examples/digits_glow.py [--steps 1000] [--out examples/out]
Needs: pip install 'tfp-flows[data,plot]'
"""

import argparse
import time
from pathlib import Path

import keras
import numpy as np

import tfp_flows
from tfp_flows import data, metrics, plots

parser = argparse.ArgumentParser()
parser.add_argument("--steps", type=int, default=1000)
parser.add_argument("--batch-size", type=int, default=64)
parser.add_argument("--out", default="examples/out")
args = parser.parse_args()
out = Path(args.out)
out.mkdir(parents=True, exist_ok=True)

keras.utils.set_random_seed(0)
(x_train, _), (x_test, _) = data.load_digits()  # 1,500 / 297 images, 17 grey levels
flow = tfp_flows.Glow((8, 8, 1), num_levels=2, num_steps=4, hidden_channels=128, num_values=17)
print(f"Glow with {flow.count_params():,} parameters")

steps_per_epoch = len(x_train) // args.batch_size
flow.compile(optimizer=keras.optimizers.Adam(1e-3))  # XLA and steps per execution: the flow's
start = time.time()
flow.fit(x_train, batch_size=args.batch_size, epochs=-(-args.steps // steps_per_epoch), verbose=0)
steps = -(-args.steps // steps_per_epoch) * steps_per_epoch
print(f"trained {steps} steps in {time.time() - start:.0f} s")

test_bpd = float(np.mean(flow.bits_per_dim(x_test, num_draws=4)))
midpoint = float(metrics.bits_per_dim(-np.mean(flow.score(x_test)), 64))
print(f"test bits/dim (uniform-dequantization bound, 4 draws of u): {test_bpd:.3f}; "
      f"the midpoint score u = 1/2 (not a bound) reads {midpoint:.3f}")

plots.image_grid(flow.sample(32, seed=0, temperature=0.8), out / "digits_samples.png", num_values=17)
plots.temperatures(flow, out / "digits_temperatures.png")
plots.interpolation(flow, x_test[0], x_test[1], out / "digits_interpolation.png")
print(f"pictures in {out}/: digits_samples.png, digits_temperatures.png, digits_interpolation.png")
