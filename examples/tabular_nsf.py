"""Tabular density estimation: a neural spline flow against an affine RealNVP of the same size.

Run: python examples/tabular_nsf.py [--data breast_cancer|wine|diabetes] [--epochs 300]
[--seed 0] [--models NSF,RealNVP] [--realnvp-linear auto|lu|lu_reversal|reverse]

The data ship with scikit-learn (``pip install scikit-learn``): the 30-d breast cancer
measurements (569 rows), the 13-d wine analyses (178 rows) or the 10-d diabetes
features (442 rows). Columns are standardised with the training rows' statistics;
rows are split 60/20/20 (seeded) into train, validation (early stopping) and test.
NSF is the builder's defaults (steps, bins, bound) but for the conditioners' width
(``--nsf-width``, 16: a 30-d spline coupling has 15 * (3K - 1) outputs, so even narrow
MLPs are large for a few hundred rows); RealNVP has as many steps of ActNorm + LU +
affine coupling, its MLP width chosen so that its parameter count is the closest to
NSF's. Prints the test NLL in nats per row.
"""

import argparse
import inspect

import keras
import numpy as np
from sklearn import datasets

import tfp_flows

LOADERS = {"breast_cancer": datasets.load_breast_cancer, "wine": datasets.load_wine,
           "diabetes": datasets.load_diabetes}

parser = argparse.ArgumentParser()
parser.add_argument("--data", choices=sorted(LOADERS), default="breast_cancer")
parser.add_argument("--epochs", type=int, default=300)
parser.add_argument("--nsf-width", type=int, default=16)
parser.add_argument("--seed", type=int, default=0)
parser.add_argument("--models", default="NSF,RealNVP", help="comma-separated: NSF, RealNVP")
parser.add_argument("--realnvp-linear", default="auto",
                    help="RealNVP's linear maps: auto, lu, lu_reversal or reverse")
args = parser.parse_args()

x = LOADERS[args.data]().data.astype(np.float64)
order = np.random.default_rng(args.seed).permutation(len(x))
cut_val, cut_test = int(0.6 * len(x)), int(0.8 * len(x))
train, val, test = x[order[:cut_val]], x[order[cut_val:cut_test]], x[order[cut_test:]]
mean, std = train.mean(0), train.std(0) + 1e-8
train, val, test = (((part - mean) / std).astype(np.float32) for part in (train, val, test))
d = x.shape[1]
print(f"{args.data}: {d} dimensions, {len(train)} train / {len(val)} validation / "
      f"{len(test)} test rows")


def mlp_params(inputs: int, width: int, outputs: int) -> int:
    return inputs * width + width + width * width + width + width * outputs + outputs


def realnvp_width(target: int) -> int:
    """The MLP width whose RealNVP conditioners have the closest count to ``target``."""
    kept, changed = d // 2, d - d // 2
    return min(range(8, 1025), key=lambda w: abs(mlp_params(kept, w, 2 * changed) - target))


nsf_defaults = {k: v.default for k, v in inspect.signature(tfp_flows.NSF).parameters.items()}
num_steps, num_bins = nsf_defaults["num_steps"], nsf_defaults["num_bins"]
nsf_width = args.nsf_width
nsf_mlp = mlp_params(d // 2, nsf_width, (d - d // 2) * (3 * num_bins - 1))
flows = {
    "NSF": lambda: tfp_flows.NSF(d, hidden_units=(nsf_width,) * 2),
    "RealNVP": lambda: tfp_flows.RealNVP(d, num_steps=num_steps,
                                         hidden_units=(realnvp_width(nsf_mlp),) * 2,
                                         linear=args.realnvp_linear),
}
for name, make in flows.items():
    if name not in args.models.split(","):
        continue
    keras.utils.set_random_seed(args.seed)
    flow = make()
    flow.compile(optimizer=keras.optimizers.Adam(1e-3), jit_compile=True, steps_per_execution=8)
    stop = keras.callbacks.EarlyStopping(patience=30, restore_best_weights=True)
    history = flow.fit(train, batch_size=64, epochs=args.epochs, validation_data=(val,),
                       callbacks=[stop], verbose=0)
    test_nll = -float(np.mean(flow.log_prob(test)))
    print(f"{name:>8}: test NLL {test_nll:.3f} nats ({flow.count_params()} parameters, "
          f"best epoch {int(np.argmin(history.history['val_loss'])) + 1} of "
          f"{len(history.history['val_loss'])})", flush=True)
