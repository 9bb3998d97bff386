"""Case `jet`: Jet (ViT couplings) against our Glow at equal training wall time.

Digits (default): ``Jet((8, 8, 1), num_couplings=8, patch_size=2, width=64, depth=2,
num_heads=4, num_values=17)`` for 1,000 steps of batch 64, Adam 1e-3, ``fit`` with
``jit_compile=True, steps_per_execution=16``; our ``Glow((8, 8, 1), num_levels=2,
num_steps=4, hidden_channels=128, num_values=17)`` with the same optimizer and batches
for the same training wall time. The two train in alternating chunks of 48 steps in
one process, so that load on a shared machine falls on both; XLA compile time (the
first execution of each) is reported apart and not counted in the budget.

``--data mnist``: the 4,000-image MNIST subset padded to 32x32 (256 levels), Jet with
``patch_size=4`` (64 tokens of 16 values) against the same Glow, ``--steps`` Jet steps.

Reported: test bits/dim as the uniform-dequantization bound
(``flow.bits_per_dim(x, num_draws=8)``: ``-mean_u log p(k + u) / (D ln 2)``, fresh
``u ~ U(0, 1)^D``), cross-checked against ``flow.distribution().log_prob(k + u)``;
steps run and training images/s of each side; Glow's bound at Jet's step count if
it got there.
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

import tfp_flows
from benchmarks import _common
from tfp_flows import data, metrics

BATCH, LR, SPE, CHUNK, DRAWS = 64, 1e-3, 16, 48, 8


def settings(name: str, quick: bool):
    """(image shape, levels, Jet kwargs, Glow kwargs, loader)."""
    if name == "digits":
        shape, levels, loader = (8, 8, 1), 17, data.load_digits
        jet = dict(num_couplings=8, patch_size=2, width=64, depth=2, num_heads=4)
    else:
        shape, levels, loader = (32, 32, 1), 256, lambda: data.load_mnist(pad=2)
        jet = dict(num_couplings=8, patch_size=4, width=64, depth=2, num_heads=4)
    glow = dict(num_levels=2, num_steps=4, hidden_channels=128)
    if quick:
        jet.update(num_couplings=2, width=16, depth=1, num_heads=2)
        glow.update(num_steps=1, hidden_channels=16)
    return shape, levels, jet, glow, loader


def bound(flow, x, draws=DRAWS):
    """Test bits/dim, the uniform-dequantization bound, over ``draws`` fresh draws of u."""
    return float(np.mean(flow.bits_per_dim(x, num_draws=draws, seed=1)))


def bound_by_hand(flow, x, seed=2):
    """The same bound from TFP's density of ``k + u`` in data units (one draw of u):
    ``flow.distribution()`` already carries the dequantizer's ``-D log(levels)``."""
    u = np.random.default_rng(seed).uniform(size=x.shape).astype(np.float32)
    log_p = tf.function(lambda y: flow.distribution().log_prob(y))(x.astype(np.float32) + u)
    return metrics.bits_per_dim(-float(np.mean(log_p)), np.prod(x.shape[1:]))


def main(argv=None):
    args = _common.parse_args(
        __doc__.splitlines()[0], argv,
        lambda p: (p.add_argument("--data", choices=["digits", "mnist"], default="digits"),
                   p.add_argument("--steps", type=int, default=None,
                                  help="Jet training steps (default 1000; --quick 32)")))
    shape, levels, jet_kwargs, glow_kwargs, loader = settings(args.data, args.quick)
    total = args.steps or (32 if args.quick else 1000)
    (x_train, _), (x_test, _) = loader()
    if args.data == "mnist":
        x_test = x_test[:500]  # evaluation of 8 draws stays short on a CPU
    rng = np.random.default_rng(0)

    def batches(steps):
        return x_train[rng.integers(0, len(x_train), steps * BATCH)]

    flows, state = {}, {}
    for name in ("jet", "glow"):
        keras.utils.set_random_seed(0)
        if name == "jet":
            flows[name] = tfp_flows.Jet(shape, num_values=levels, **jet_kwargs)
        else:
            flows[name] = tfp_flows.Glow(shape, num_values=levels, **glow_kwargs)
        flows[name].compile(optimizer=keras.optimizers.Adam(LR), jit_compile=True,
                            steps_per_execution=SPE)
        state[name] = {"steps": 0, "train_s": 0.0, "params": flows[name].count_params()}
        # The first execution compiles: timed apart, its steps count as steps.
        state[name]["compile_s"] = _common.timed(lambda f=flows[name]: f.fit(
            batches(SPE), batch_size=BATCH, epochs=1, shuffle=False, verbose=0))[0]
        state[name]["steps"] = SPE
    print(f"parameters: jet {state['jet']['params']:,}, glow {state['glow']['params']:,}; "
          f"compile (first {SPE} steps): jet {state['jet']['compile_s']:.1f}s, "
          f"glow {state['glow']['compile_s']:.1f}s", flush=True)

    def chunk(name, steps):
        seconds, history = _common.timed(lambda: flows[name].fit(
            batches(steps), batch_size=BATCH, epochs=1, shuffle=False, verbose=0))
        state[name]["steps"] += steps
        state[name]["train_s"] += seconds
        return history.history["loss"][-1]

    glow_at_jet_steps = None
    while state["jet"]["steps"] < total or state["glow"]["train_s"] < state["jet"]["train_s"]:
        if state["jet"]["steps"] < total:
            loss = chunk("jet", min(CHUNK, total - state["jet"]["steps"]))
            print(f"jet  {state['jet']['steps']:5d} steps {state['jet']['train_s']:7.1f}s "
                  f"loss {loss:.2f}", flush=True)
        if state["glow"]["train_s"] < state["jet"]["train_s"]:
            steps = state["glow"]["steps"]
            loss = chunk("glow", min(CHUNK, total - steps) if steps < total else CHUNK)
            print(f"glow {state['glow']['steps']:5d} steps {state['glow']['train_s']:7.1f}s "
                  f"loss {loss:.2f}", flush=True)
            if glow_at_jet_steps is None and state["glow"]["steps"] >= total:
                glow_at_jet_steps = (state["glow"]["steps"], bound(flows["glow"], x_test))

    result = {name: {**state[name], "test_bits_per_dim": bound(flows[name], x_test),
                     "images_per_s": (state[name]["steps"] - SPE) * BATCH / state[name]["train_s"]}
              for name in flows}
    check = {name: bound_by_hand(flows[name], x_test) for name in flows}
    for name in flows:
        print(f"{name}: {result[name]['steps']} steps, bound {result[name]['test_bits_per_dim']:.3f} "
              f"bits/dim ({DRAWS} draws); by hand from distribution().log_prob(k + u), one "
              f"draw: {check[name]:.3f}", flush=True)
    jet, glow = result["jet"], result["glow"]
    note = (f"equal training time {jet['train_s']:.0f}s vs {glow['train_s']:.0f}s (compile "
            f"excluded); steps jet {jet['steps']}, glow {glow['steps']}")
    rows = [
        _common.row(f"{args.data}: test bits/dim (bound), equal time", jet["test_bits_per_dim"],
                    glow["test_bits_per_dim"], "bits/dim", note, higher_is_better=False),
        _common.row(f"{args.data}: train images/s (fit, XLA)", jet["images_per_s"],
                    glow["images_per_s"], "images/s", "baseline = our Glow"),
        _common.row(f"{args.data}: first {SPE} steps incl. compile", jet["compile_s"],
                    glow["compile_s"], "s", higher_is_better=False),
        _common.row(f"{args.data}: trainable parameters", jet["params"], glow["params"], ""),
    ]
    if glow_at_jet_steps is not None:
        rows.append(_common.row(
            f"{args.data}: test bits/dim (bound), equal steps", jet["test_bits_per_dim"],
            glow_at_jet_steps[1], "bits/dim", f"glow at {glow_at_jet_steps[0]} steps",
            higher_is_better=False))
    details = {"data": args.data, "batch": BATCH, "learning_rate": LR,
               "steps_per_execution": SPE, "chunk": CHUNK, "draws": DRAWS,
               "jet": jet_kwargs, "glow": glow_kwargs, "results": result,
               "bound_by_hand_one_draw": check, "glow_at_jet_steps": glow_at_jet_steps,
               "note": "CPU timings on the machine in 'machine'; shared machines are noisy"}
    _common.write_results("jet" if args.data == "digits" else f"jet_{args.data}", args, rows,
                          details)


if __name__ == "__main__":
    main()
