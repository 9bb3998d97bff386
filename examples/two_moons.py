"""Two moons: the three couplings side by side, test NLL, density pictures.

Run: python examples/two_moons.py [--steps 3000] [--out examples/out] [--seed 0] [--ema M]
``--ema M``: Adam with a moving average of the weights (``use_ema=True``, momentum M),
which ``fit`` writes over the weights at its end.
The data's own entropy is 0.285 nats: no model can score below it.
"""

import argparse
import time
from pathlib import Path

import keras
import numpy as np

import tfp_flows
from tfp_flows import data, plots

parser = argparse.ArgumentParser()
parser.add_argument("--steps", type=int, default=3000)
parser.add_argument("--couplings", default="affine,prelu,additive")
parser.add_argument("--out", default="examples/out")
parser.add_argument("--seed", type=int, default=0)
parser.add_argument("--ema", type=float, default=None)
args = parser.parse_args()
out = Path(args.out)
out.mkdir(parents=True, exist_ok=True)

batch_size = 256
(x_train, _), (x_test, _) = data.load_two_moons(num_train=batch_size * args.steps // 10)
for coupling in args.couplings.split(","):
    keras.utils.set_random_seed(args.seed)
    flow = tfp_flows.RealNVP(2, coupling=coupling)  # 16 steps, MLP 64x64
    ema = {} if args.ema is None else {"use_ema": True, "ema_momentum": args.ema}
    flow.compile(optimizer=keras.optimizers.Adam(1e-3, **ema))  # no schedule needed
    start = time.time()
    flow.fit(x_train, batch_size=batch_size, epochs=10, verbose=0)  # 10 x steps/10 = steps
    test_nll = -float(np.mean(flow.log_prob(x_test)))
    print(f"{coupling:>8}: test NLL {test_nll:.3f} nats after {args.steps} steps "
          f"({time.time() - start:.0f} s)")
    samples = flow.sample(1000, seed=0).numpy()
    plots.density_2d(flow, x_test, out / f"moons_{coupling}.png", samples=samples)
print(f"pictures in {out}/moons_<coupling>.png")
