"""Case `defaults`: ours with ``compile(optimizer=Adam(1e-3))`` and nothing else, against TFP.

What a new user writes: ``flow.compile(optimizer=keras.optimizers.Adam(1e-3))`` and
``flow.fit(x_train, batch_size=..., epochs=...)`` (shuffled epochs, a smaller last
batch, the progress bar off). No ``jit_compile``, no ``steps_per_execution``: the
flow's defaults (XLA, and steps per execution it chooses) are what is measured.

- Two moons, 8 affine couplings with 64x64 MLPs, batch 256, against TFP's
  jit-compiled ``tfb.RealNVP`` chain of the ``moons`` case (one XLA step per batch in
  a graph loop, Keras 3 Adam).
- Digits 8x8 (17 levels), Glow 2 levels x 4 steps, width 128, batch 64, against TFP's
  ``tfb.Glow`` of the ``glow_digits`` case (XLA step, uniform dequantization).

Both sides train the same number of steps: one untimed warm-up round (XLA compiles;
ours also times its executions and chooses its steps per execution for the next
``fit``), then ``repeats`` timed rounds, alternating sides; one round of ours is
one ``fit`` of ``epochs`` epochs. Reported: training samples (images) per second,
the median of the rounds, and the test NLL (moons, nats) or bits/dim (digits: the
uniform-dequantization bound, ``-E_u[log p(k + u)] / (D ln 2)`` over fresh draws
``u ~ U(0, 1)^D``, for both sides) after the same steps. Floors (issue 13): 1.5x TFP's
samples/s (goal 2x) at an equal or better test score.

``--spe`` also times ours with ``steps_per_execution`` 1, 16, 100 given explicitly
(moons, ``jit_compile=True``), beside the default.
"""

from __future__ import annotations

import math

import keras  # noqa: E402  (after tfp_flows set the backend)
import numpy as np
import tensorflow as tf  # noqa: E402

from benchmarks import _common, glow_digits, moons
from benchmarks._loop import batches, make_trainer
from tfp_flows import metrics
from tfp_flows.data import load_digits, load_two_moons  # noqa: E402

LR = 1e-3


def adam():
    return keras.optimizers.Adam(LR)


def default_flow(build):
    """``build()`` compiled with the optimizer alone: the defaults under test."""
    keras.utils.set_random_seed(0)
    flow = build()
    flow.compile(optimizer=adam())
    return flow


def timed_rounds(sides: dict, repeats: int) -> dict:
    """One untimed round per side (compilation), then ``repeats`` alternating rounds."""
    first = {name: _common.timed(fn)[0] for name, fn in sides.items()}
    stats = _common.alternate(sides, repeats)
    return first, stats


def run_moons(quick: bool, repeats: int, spe: bool):
    (x_train, _), (x_test, _) = load_two_moons()
    batch = moons.BATCH
    epochs = 1 if quick else 4
    couplings = 2 if quick else moons.NUM_STEPS
    steps_per_epoch = math.ceil(len(x_train) / batch)
    steps = epochs * steps_per_epoch  # per round, both sides

    flow = default_flow(lambda: moons.ours(num_steps=couplings))
    keras.utils.set_random_seed(0)
    dist, variables = moons.tfp_realnvp(num_steps=couplings)
    tfp_step = make_trainer(moons.tfp_loss(dist), variables, adam())
    rng = np.random.default_rng(0)

    def ours():
        flow.fit(x_train, batch_size=batch, epochs=epochs, verbose=0)

    def tfp():
        return tfp_step(tf.constant(batches(x_train, steps, batch, rng)))

    sides = {"ours": ours, "tfp": tfp}
    explicit = {}
    if spe:
        for s in (1, 16, 100):
            keras.utils.set_random_seed(0)
            explicit[s] = moons.ours(num_steps=couplings)
            explicit[s].compile(optimizer=adam(), jit_compile=True, steps_per_execution=s)
            sides[f"ours, S={s}"] = (lambda f: lambda: f.fit(
                x_train, batch_size=batch, epochs=epochs, verbose=0))(explicit[s])
    first, stats = timed_rounds(sides, repeats)
    rate = {name: steps * batch / s["median_s"] for name, s in stats.items()}
    total = steps * (repeats + 1)
    nll = {"ours": -float(np.mean(flow.log_prob(x_test))),
           "tfp": -float(np.mean(dist.log_prob(x_test)))}
    chosen = int(flow.steps_per_execution)
    spread = max(s["spread"] for s in stats.values())
    rows = [
        _common.row("moons: train samples/s, compile(optimizer) only", rate["ours"], rate["tfp"],
                    "samples/s", f"median of {repeats} rounds of {steps} steps, spread "
                    f"{spread:.0%}; ours chose {chosen} steps per execution"),
        _common.row(f"moons: test NLL after {total} steps", nll["ours"], nll["tfp"], "nats",
                    higher_is_better=False),
        _common.row("moons: first round incl. compile", first["ours"], first["tfp"], "s",
                    higher_is_better=False),
    ]
    for s in explicit:
        rows.append(_common.row(f"moons: ours jit, S={s} vs default", rate[f"ours, S={s}"],
                                rate["ours"], "samples/s", "baseline column = ours by default"))
    details = {"couplings": couplings, "batch": batch, "epochs_per_round": epochs,
               "steps_per_round": steps, "total_steps": total, "chosen_steps": chosen,
               "times": stats, "first_round_s": first, "samples_per_s": rate, "test_nll": nll,
               "timings": getattr(getattr(flow.train_function, "trainer", None), "timings", None)}
    return rows, details


def tfp_bound_bits(dist, x, draws: int, seed: int = 0) -> float:
    """TFP's Glow: the uniform-dequantization bound over ``draws`` fresh draws of ``u``."""
    total = 0.0
    for k in range(draws):
        noise = tf.random.stateless_uniform(x.shape, seed=(seed, k))
        total += float(np.mean(glow_digits.tfp_log_prob(dist, x, noise)))
    return metrics.bits_per_dim(-total / draws, glow_digits.D)


def ours_bound_bits(flow, x, draws: int, seed: int = 0) -> float:
    return float(np.mean(flow.bits_per_dim(x, num_draws=draws, seed=seed)))


def run_digits(quick: bool, repeats: int):
    (x_train, _), (x_test, _) = load_digits()
    batch = glow_digits.BATCH
    epochs = 1 if quick else 2
    steps_per_epoch = math.ceil(len(x_train) / batch)
    steps = epochs * steps_per_epoch

    flow = default_flow(lambda: glow_digits.ours(quick))
    keras.utils.set_random_seed(0)
    dist, glow = glow_digits.tfp_glow(quick)
    rng = np.random.default_rng(0)
    trainer, _ = glow_digits.tfp_trainer(
        dist, glow, x_train[rng.integers(0, len(x_train), batch)])

    def ours():
        flow.fit(x_train, batch_size=batch, epochs=epochs, verbose=0)

    def tfp():
        return trainer(tf.constant(x_train[rng.integers(0, len(x_train), (steps, batch))]))

    first, stats = timed_rounds({"ours": ours, "tfp": tfp}, repeats)
    rate = {name: steps * batch / s["median_s"] for name, s in stats.items()}
    total = steps * (repeats + 1)
    draws = 2 if quick else 8
    bits = {"ours": ours_bound_bits(flow, x_test, draws),
            "tfp": tfp_bound_bits(dist, x_test, draws)}
    chosen = int(flow.steps_per_execution)
    spread = max(s["spread"] for s in stats.values())
    rows = [
        _common.row("digits Glow: train images/s, compile(optimizer) only", rate["ours"],
                    rate["tfp"], "images/s", f"median of {repeats} rounds of {steps} steps, "
                    f"spread {spread:.0%}; ours chose {chosen} steps per execution"),
        _common.row(f"digits Glow: test bits/dim after {total} steps", bits["ours"],
                    bits["tfp"], "bits/dim", f"dequantization bound, {draws} draws of u",
                    higher_is_better=False),
        _common.row("digits Glow: first round incl. compile", first["ours"], first["tfp"], "s",
                    higher_is_better=False),
    ]
    details = {"config_levels_steps_width": glow_digits.config(quick), "batch": batch,
               "epochs_per_round": epochs, "steps_per_round": steps, "total_steps": total,
               "chosen_steps": chosen, "times": stats, "first_round_s": first,
               "images_per_s": rate, "bits_per_dim": bits, "draws": draws}
    return rows, details


def main(argv=None):
    def extra(parser):
        parser.add_argument("--only", choices=["moons", "digits"], help="one data set")
        parser.add_argument("--spe", action="store_true",
                            help="also time explicit steps_per_execution 1, 16, 100 (moons)")

    args = _common.parse_args(__doc__.splitlines()[0], argv, extra)
    repeats = args.repeats or (2 if args.quick else 5)
    rows, details = [], {}
    if args.only in (None, "moons"):
        more, details["moons"] = run_moons(args.quick, repeats, args.spe)
        rows += more
    if args.only in (None, "digits"):
        more, details["digits"] = run_digits(args.quick, repeats)
        rows += more
    _common.write_results("defaults", args, rows, details)


if __name__ == "__main__":
    main()
