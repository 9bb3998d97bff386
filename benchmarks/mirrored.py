"""Case `mirrored`: MirroredStrategy on two logical CPU devices against one device.

The same model, global batch and ``model.fit`` call (``jit_compile=True``: per-replica
XLA under the strategy); training samples/s, alternately. Two logical devices share
the same two cores, so this measures the strategy's overhead, not a speed-up; on a
machine with several GPUs each replica gets its own device.
"""

from __future__ import annotations

import tensorflow as tf

_cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(_cpu, [tf.config.LogicalDeviceConfiguration()] * 2)

import keras  # noqa: E402

import tfp_flows  # noqa: E402
from benchmarks import _common  # noqa: E402

BATCH = 256


def trainer(strategy, x):
    keras.utils.set_random_seed(0)
    with strategy.scope():
        flow = tfp_flows.RealNVP(2, num_steps=8, hidden_units=(64, 64))
        flow.compile(optimizer=keras.optimizers.Adam(1e-3), jit_compile=True,
                     steps_per_execution=20)
    flow.fit(x[:BATCH * 20], batch_size=BATCH, epochs=1, verbose=0)  # compile
    return lambda: flow.fit(x, batch_size=BATCH, epochs=1, shuffle=False, verbose=0)


def main(argv=None):
    args = _common.parse_args(__doc__.splitlines()[0], argv)
    steps = 40 if args.quick else 400
    repeats = args.repeats or (2 if args.quick else 5)
    x = tfp_flows.data.two_moons(BATCH * steps, seed=0)[0]
    strategies = {"one device": tf.distribute.get_strategy(),
                  "mirrored, 2 logical CPUs": tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])}
    runs = {name: trainer(strategy, x) for name, strategy in strategies.items()}
    stats = _common.alternate(runs, repeats)
    rate = {name: len(x) / s["median_s"] for name, s in stats.items()}
    rows = [_common.row("train samples/s, two moons RealNVP 8x(64,64), batch 256",
                        rate["mirrored, 2 logical CPUs"], rate["one device"], "samples/s",
                        "ours = mirrored on 2 logical CPUs, baseline = one device")]
    _common.write_results("mirrored", args, rows, {"times": stats, "samples_per_s": rate,
                                                   "steps": steps})


if __name__ == "__main__":
    main()
