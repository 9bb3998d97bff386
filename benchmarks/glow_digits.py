"""Case `glow_digits`: 8x8 digits (17 levels), Glow 2 levels x 4 steps, width 128, batch 64.

Ours: ``tfp_flows.Glow((8, 8, 1), num_levels=2, num_steps=4, hidden_channels=128,
num_values=17)`` with ``fit`` (XLA, and without XLA). Baseline: ``tfb.Glow(output_shape=
(8, 8, 1), num_glow_blocks=2, num_steps_per_block=4)`` with TFP's own
``GlowDefaultNetwork(num_hidden=128)`` couplings (tf_keras; they work beside Keras 3
because TFP 0.25 needs tf-keras anyway) and a 3-layer width-128 exit network (ours
has a 3-layer split prior), the same uniform dequantization, trained by the XLA
step of ``benchmarks._loop`` with Keras 3 Adam (which updates TFP's ``tf.Variable``s).

Reports training images/s, test bits/dim after the same steps, sampling images/s
and peak resident memory while training (each side in its own subprocess:
``python -m benchmarks.glow_digits --memory ours|tfp``).
"""

from __future__ import annotations

import json
import math
import subprocess
import sys

import keras  # noqa: E402
import numpy as np
import tensorflow as tf  # noqa: E402
import tensorflow_probability as tfp  # noqa: E402
import tf_keras  # noqa: E402

import tfp_flows  # noqa: E402
from benchmarks import _common
from benchmarks._loop import make_trainer
from tfp_flows import metrics
from tfp_flows.data import load_digits  # noqa: E402

tfb, tfd = tfp.bijectors, tfp.distributions
SHAPE, LEVELS, BATCH, LR = (8, 8, 1), 17, 64, 1e-3
D = int(np.prod(SHAPE))


def config(quick):
    """(levels, steps per level, width): the quick run is smaller so that it compiles fast."""
    return (2, 1, 32) if quick else (2, 4, 128)


def ours(quick):
    levels, steps, width = config(quick)
    return tfp_flows.Glow(SHAPE, num_levels=levels, num_steps=steps, hidden_channels=width,
                          num_values=LEVELS)


def tfp_glow_of(shape, levels, steps, width, seed=0):
    """TFP's ``tfb.Glow`` with ``GlowDefaultNetwork(width)`` couplings and a 3-layer
    width-``width`` exit network over ``N(0, I)``: ``(distribution, bijector)``."""
    def coupling(input_shape):
        return tfb.GlowDefaultNetwork(input_shape, num_hidden=width)

    def exit_net(input_shape, output_chan):
        layers = tf_keras.layers
        return tf_keras.Sequential([
            layers.Input(input_shape),
            layers.Conv2D(width, 3, padding="same", activation="relu"),
            layers.Conv2D(width, 1, activation="relu"),
            layers.Conv2D(2 * output_chan, 3, padding="same", kernel_initializer="zeros")])

    glow = tfb.Glow(output_shape=shape, num_glow_blocks=levels, num_steps_per_block=steps,
                    coupling_bijector_fn=coupling, exit_bijector_fn=exit_net, seed=seed)
    base = tfd.Sample(tfd.Normal(0.0, 1.0), glow.inverse_event_shape(shape))
    return tfd.TransformedDistribution(base, glow), glow


def tfp_glow(quick, seed=0):
    """The baseline distribution over ``v = (k + u) / 17 - 0.5`` and its variables."""
    return tfp_glow_of(SHAPE, *config(quick), seed=seed)


def dequantize(k, noise, levels=LEVELS):
    return (tf.cast(k, tf.float32) + noise) / levels - 0.5


def tfp_log_prob(dist, k, noise, levels=LEVELS):
    """log-mass bound of the discrete ``k``, as ours: density of ``v`` minus ``D log levels``."""
    dims = int(np.prod(dist.event_shape))
    return dist.log_prob(dequantize(k, noise, levels)) - dims * math.log(levels)


def tfp_trainer(dist, glow, first_batch):
    dist.log_prob(dequantize(first_batch, 0.5))  # builds the nets, data-initialises ActNorm
    seeds = keras.random.SeedGenerator(0)

    def loss(k):
        noise = keras.random.uniform(tf.shape(k), seed=seeds)
        return -tf.reduce_mean(tfp_log_prob(dist, k, noise))

    return make_trainer(loss, glow.trainable_variables, keras.optimizers.Adam(LR)), seeds


def bits_per_dim(log_prob):
    return metrics.bits_per_dim(-float(np.mean(log_prob)), D)


def memory_run(side, quick):
    """Trains one side for a while in this process; prints its peak RSS as JSON."""
    (x_train, _), _ = load_digits()
    steps, spe = (10, 5) if quick else (100, 25)
    rng = np.random.default_rng(0)
    xs = x_train[rng.integers(0, len(x_train), (steps, BATCH))]
    before = _common.peak_rss_mb()
    if side == "ours":
        flow = ours(quick)
        flow.compile(optimizer=keras.optimizers.Adam(LR), jit_compile=True,
                     steps_per_execution=spe)
        built = _common.peak_rss_mb()
        flow.fit(xs.reshape((-1,) + SHAPE), batch_size=BATCH, epochs=1, shuffle=False,
                 verbose=0)
    else:
        dist, glow = tfp_glow(quick)
        trainer, _ = tfp_trainer(dist, glow, xs[0])
        built = _common.peak_rss_mb()
        xs = tf.constant(xs)
        for start in range(0, steps, spe):
            trainer(xs[start:start + spe]).numpy()
    print(json.dumps({"side": side, "rss_after_import_mb": before, "rss_after_build_mb": built,
                      "peak_rss_mb": _common.peak_rss_mb(),
                      "ru_maxrss_mb": _common.ru_maxrss_mb(), "steps": steps}))


def memory(side, quick):
    command = [sys.executable, "-m", "benchmarks.glow_digits", "--memory", side]
    done = subprocess.run(command + (["--quick"] if quick else []), capture_output=True,
                          text=True, check=False)
    for line in done.stdout.splitlines()[::-1]:
        if line.startswith("{"):
            return json.loads(line)
    return {"error": done.stderr[-2000:]}


def _growth(result):
    if "peak_rss_mb" not in result:
        return None
    return result["peak_rss_mb"] - result["rss_after_import_mb"]


def sampling(flow, dist, glow, n):
    """Images/s: eager ``sample`` as a user calls it, and a ``tf.function`` decode."""
    z = tf.random.stateless_normal((n,) + tuple(flow.latent_shape), seed=(1, 2))
    z_tfp = tf.random.stateless_normal((n,) + tuple(glow.inverse_event_shape(SHAPE)),
                                       seed=(1, 2))
    decode_ours = tf.function(flow.decode)
    decode_tfp = tf.function(glow.forward)
    functions = {"ours eager": lambda: flow.sample(n, seed=0),
                 "tfp eager": lambda: dist.sample(n, seed=(0, 1)),
                 "ours tf.function": lambda: decode_ours(z),
                 "tfp tf.function": lambda: decode_tfp(z_tfp)}
    for fn in functions.values():
        fn()
    stats = _common.alternate(functions, 3)
    return {name: n / s["median_s"] for name, s in stats.items()}, stats


def main(argv=None):
    args = _common.parse_args(
        __doc__.splitlines()[0], argv,
        lambda p: p.add_argument("--memory", choices=["ours", "tfp"],
                                 help="internal: train one side and print its peak RSS"))
    quick = args.quick
    if args.memory:
        return memory_run(args.memory, quick)
    chunk, spe = (10, 5) if quick else (50, 25)
    repeats = args.repeats or (2 if quick else 5)
    total_steps = chunk * (repeats + 1)
    (x_train, _), (x_test, _) = load_digits()
    rng = np.random.default_rng(0)

    flows = {}
    for name, jit in [("ours", True), ("ours_no_xla", False)]:
        keras.utils.set_random_seed(0)
        flows[name] = ours(quick)
        flows[name].compile(optimizer=keras.optimizers.Adam(LR), jit_compile=jit,
                            steps_per_execution=spe)
    keras.utils.set_random_seed(0)
    dist, glow = tfp_glow(quick)
    state = {"xs": x_train[rng.integers(0, len(x_train), (chunk, BATCH))]}
    trainer, _ = tfp_trainer(dist, glow, state["xs"][0])
    params = {"ours": _common.count_params(flows["ours"].trainable_variables),
              "tfp": _common.count_params(glow.trainable_variables)}
    print(f"trainable parameters: ours {params['ours']}, tfp {params['tfp']} "
          f"({100 * (params['ours'] / params['tfp'] - 1):+.1f}%)")

    def fit(name):
        return lambda: flows[name].fit(state["xs"].reshape((-1,) + SHAPE), batch_size=BATCH,
                                       epochs=1, shuffle=False, verbose=0)

    def run_tfp():
        xs = tf.constant(state["xs"])
        for start in range(0, chunk, spe):
            loss = trainer(xs[start:start + spe])
        return loss

    sides = {"ours": fit("ours"), "ours_no_xla": fit("ours_no_xla"), "tfp": run_tfp}
    first = {name: _common.timed(fn)[0] for name, fn in sides.items()}
    times = {name: [] for name in sides}
    for _ in range(repeats):
        state["xs"] = x_train[rng.integers(0, len(x_train), (chunk, BATCH))]
        for name, fn in sides.items():
            times[name].append(_common.timed(fn)[0])
    stats = {name: _common.summary(t) for name, t in times.items()}
    rate = {name: chunk * BATCH / s["median_s"] for name, s in stats.items()}
    bpd = {"ours": bits_per_dim(flows["ours"].log_prob(x_test)),
           "ours_no_xla": bits_per_dim(flows["ours_no_xla"].log_prob(x_test)),
           # The same uniform-dequantization bound as ours: flow.log_prob(k) draws u with
           # Philox from the seed (0, 0); the TFP side gets those very draws.
           "tfp": bits_per_dim(tfp_log_prob(dist, x_test, tf.random.stateless_uniform(
               x_test.shape, seed=tf.constant([0, 0]), alg="philox")))}
    sample_rate, sample_stats = sampling(flows["ours"], dist, glow, 64 if quick else 256)
    mem = {side: memory(side, quick) for side in ("ours", "tfp")}
    spread = max(s["spread"] for s in stats.values())
    rows = [
        _common.row("train images/s (fit, XLA)", rate["ours"], rate["tfp"], "images/s",
                    f"median of {repeats}x{chunk} steps, spread {spread:.0%}"),
        _common.row("train images/s: ours XLA vs ours no XLA", rate["ours"],
                    rate["ours_no_xla"], "images/s", "baseline column = ours without XLA"),
        _common.row(f"test bits/dim after {total_steps} steps", bpd["ours"], bpd["tfp"],
                    "bits/dim", f"ours no XLA: {bpd['ours_no_xla']:.3f}",
                    higher_is_better=False),
        _common.row("sample images/s (eager sample)", sample_rate["ours eager"],
                    sample_rate["tfp eager"], "images/s"),
        _common.row("sample images/s (tf.function decode)", sample_rate["ours tf.function"],
                    sample_rate["tfp tf.function"], "images/s"),
        _common.row("peak RSS while training (VmHWM)", mem["ours"].get("peak_rss_mb"),
                    mem["tfp"].get("peak_rss_mb"), "MiB", "own subprocess each",
                    higher_is_better=False),
        _common.row("  growth over RSS after import", _growth(mem["ours"]), _growth(mem["tfp"]),
                    "MiB", "peak - after imports and data", higher_is_better=False),
        _common.row("first chunk incl. compile", first["ours"], first["tfp"], "s",
                    f"ours no XLA: {first['ours_no_xla']:.1f}s", higher_is_better=False),
        _common.row("trainable parameters", params["ours"], params["tfp"], ""),
    ]
    details = {"config_levels_steps_width": config(quick), "batch": BATCH,
               "steps_per_chunk": chunk, "steps_per_execution": spe,
               "total_steps": total_steps, "params": params, "times": stats,
               "images_per_s": rate, "bits_per_dim": bpd, "sampling_images_per_s": sample_rate,
               "sampling_times": sample_stats, "memory": mem, "first_chunk_s": first}
    _common.write_results("glow_digits", args, rows, details)


if __name__ == "__main__":
    main()
