"""Case `tarflow`: TarFlow (Transformer autoregressive blocks) against our Jet and Glow, equal steps.

Digits (default): ``TarFlow((8, 8, 1), num_blocks=8, layers_per_block=1, patch_size=1,
width=64, num_heads=4, num_values=17)`` (64 tokens of one pixel; no rotations between the
blocks, the default), 1,000 steps of batch 64, ``Adam(1e-3, clipnorm=1.0)`` (``--clipnorm
0``: unclipped), ``fit`` with ``jit_compile=True, steps_per_execution=16``: the budget of
the `jet` case. Our Jet (that case's) and Glow (``num_levels=2, num_steps=4,
hidden_channels=128``) train with ``Adam(1e-3)``, as in their own cases, on the same
batches for the same number of steps in the same process. ``--tarflow patch_size=2``
(any TarFlow argument, ``key=value,...``) changes the TarFlow.

``--data mnist``: the 5,000-image MNIST subset at 28x28 (256 values; `data.load_mnist`'s
seeded split, every digit in train and test), TarFlow with ``patch_size=2`` (196 tokens
of 4 values), 1,500 steps (the budget of ``benchmarks.ablation mnist``), against the same
Glow (Jet's token partitions need an even token grid; 7x7 has none).

``--noise-std s`` trains with TarFlow's Gaussian noise (``s`` in the units of the
dequantized image, ``v`` in ``[-0.5, 0.5)``) and adds the noisy model's density.

Reported for each flow: test bits/dim as the uniform-dequantization bound
(``flow.bits_per_dim(x, num_draws=8)``: ``-mean_u log p(k + u) / (D ln 2)``, a bound on the
discrete data); with noise, also ``-log p(k + u + sigma eps) / (D ln 2)``, the density of
the noisy data the flow was trained on (`tfp_flows.models.denoise.noisy_log_prob`; not a
bound on the discrete data); training images/s (XLA compile excluded), sampling images/s
(64 samples, ``graph_decode`` under XLA; TarFlow with and without its key/value cache),
parameters. Sample pictures (with and without denoising, if trained with noise) go to
``--pictures DIR``.
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

import tfp_flows
from benchmarks import _common
from tfp_flows import data
from tfp_flows.models import denoise

BATCH, LR, SPE, CHUNK, DRAWS, SAMPLES = 64, 1e-3, 16, 96, 8, 64


def settings(name: str, quick: bool):
    """(image shape, values, loader, steps, {flow name: builder})."""
    glow = dict(num_levels=2, num_steps=4, hidden_channels=128)
    if name == "digits":
        shape, values, loader, steps = (8, 8, 1), 17, data.load_digits, 1000
        tarflow = dict(num_blocks=8, layers_per_block=1, patch_size=1, width=64, num_heads=4)
        jet = dict(num_couplings=8, patch_size=2, width=64, depth=2, num_heads=4)
    else:
        shape, values, loader, steps = (28, 28, 1), 256, data.load_mnist, 1500
        tarflow = dict(num_blocks=8, layers_per_block=1, patch_size=2, width=64, num_heads=4)
        jet = None
    if quick:
        tarflow.update(num_blocks=2, layers_per_block=1, width=16, num_heads=2)
        glow.update(num_steps=1, hidden_channels=16)
        jet = None if jet is None else dict(jet, num_couplings=2, width=16, depth=1, num_heads=2)
        steps = 32
    return shape, values, loader, steps, {"tarflow": tarflow, "jet": jet, "glow": glow}


def optimizer(args, steps):
    """Adam (AdamW with ``--weight-decay``) at ``--lr`` (cosine-decayed to 0 over the
    ``steps`` with ``--cosine``), clipped by ``--clipnorm``."""
    lr = keras.optimizers.schedules.CosineDecay(args.lr, steps) if args.cosine else args.lr
    clipnorm = args.clipnorm or None
    if args.weight_decay is not None:
        return keras.optimizers.AdamW(lr, weight_decay=args.weight_decay, clipnorm=clipnorm)
    return keras.optimizers.Adam(lr, clipnorm=clipnorm)


def build(name, shape, values, kwargs, noise_std):
    if name == "tarflow":
        return tfp_flows.TarFlow(shape, num_values=values, noise_std=noise_std, **kwargs)
    builder = tfp_flows.Jet if name == "jet" else tfp_flows.Glow
    return builder(shape, num_values=values, **kwargs)


def bits(log_p, size):
    return float(-np.mean(log_p) / (size * np.log(2.0)))


def sampling_rate(flow, repeats: int):
    """Images/s of ``graph_decode`` (XLA) on ``SAMPLES`` latents: median of ``repeats``."""
    z = tf.random.stateless_normal((SAMPLES, *flow.latent_shape), seed=(3, 4))
    decode = tf.function(flow.graph_decode, jit_compile=True)
    compile_s = _common.timed(decode, z)[0]
    stats = _common.median_time(lambda: decode(z), repeats=repeats, warmup=0)
    return SAMPLES / stats["median_s"], compile_s, decode(z)


def tarflow_sampling(flow, repeats):
    """Sampling with and without the key/value cache: rates, compile times, max difference."""
    blocks = [layer for layer in flow.flow_layers if hasattr(layer, "use_cache")]
    out = {}
    for cached in (True, False):
        for block in blocks:
            block.use_cache = cached
        out[cached] = sampling_rate(flow, repeats)
    for block in blocks:
        block.use_cache = True
    difference = float(np.max(np.abs(out[True][2] - out[False][2])))
    return out[True][:2], out[False][:2], difference


def pictures(flow, directory, name, values):
    from tfp_flows import plots

    directory.mkdir(parents=True, exist_ok=True)
    raw = flow.sample(SAMPLES, seed=5).numpy()
    paths = [directory / f"tarflow_{name}_samples.png"]
    plots.image_grid(np.floor(np.clip(raw, 0, values - 1)), paths[0], values)
    if any(isinstance(layer, tfp_flows.layers.GaussianNoise) for layer in flow.flow_layers):
        clean = denoise.sample_denoised(flow, SAMPLES, seed=5).numpy()
        paths.append(directory / f"tarflow_{name}_samples_denoised.png")
        plots.image_grid(np.floor(np.clip(clean, 0, values - 1)), paths[1], values)
    return [str(p) for p in paths]


def main(argv=None):
    from pathlib import Path

    args = _common.parse_args(
        __doc__.splitlines()[0], argv,
        lambda p: (p.add_argument("--data", choices=["digits", "mnist"], default="digits"),
                   p.add_argument("--steps", type=int, default=None,
                                  help="training steps (digits 1000, mnist 1500; --quick 32)"),
                   p.add_argument("--noise-std", type=float, default=0.0),
                   p.add_argument("--baselines", nargs="*", default=None,
                                  help="of jet, glow (default: both where they apply)"),
                   p.add_argument("--pictures", default=None, help="directory for samples"),
                   p.add_argument("--lr", type=float, default=LR, help="Adam's learning rate"),
                   p.add_argument("--clipnorm", type=float, default=1.0,
                                  help="TarFlow's Adam clipnorm (default 1; 0 for none)"),
                   p.add_argument("--cosine", action="store_true",
                                  help="cosine decay of the learning rate to 0"),
                   p.add_argument("--weight-decay", type=float, default=None,
                                  help="AdamW with this decay instead of Adam"),
                   p.add_argument("--tarflow", default=None,
                                  help="TarFlow settings over the case's, as key=value,..."
                                       " e.g. patch_size=2,mixing=lu")))
    shape, values, loader, default_steps, kwargs = settings(args.data, args.quick)
    total = args.steps or default_steps
    for item in filter(None, (args.tarflow or "").split(",")):
        key, value = item.split("=")
        kwargs["tarflow"][key] = {"mixing": str, "dropout": float}.get(key, int)(value)
    names = ["tarflow"] + [n for n in (args.baselines if args.baselines is not None
                                       else ("jet", "glow")) if kwargs.get(n) is not None]
    (x_train, _), (x_test, _) = loader()
    x_test = x_test[:500]  # 8 draws of the bound stay short on a CPU
    size = int(np.prod(shape))
    rng = np.random.default_rng(0)
    order = x_train[rng.integers(0, len(x_train), total * BATCH)]  # the same batches for all
    repeats = args.repeats or (1 if args.quick else 3)

    results = {}
    for name in names:
        keras.utils.set_random_seed(0)
        flow = build(name, shape, values, kwargs[name], args.noise_std)
        # The optimizer flags are TarFlow's; Jet and Glow train with Adam(1e-3) as in their
        # own cases.
        flow.compile(optimizer=optimizer(args, total) if name == "tarflow"
                     else keras.optimizers.Adam(LR), jit_compile=True,
                     steps_per_execution=SPE)
        state = {"params": flow.count_params(), "steps": 0, "train_s": 0.0}
        losses = []
        while state["steps"] < total:
            steps = SPE if state["steps"] == 0 else min(CHUNK, total - state["steps"])
            batch = order[state["steps"] * BATCH:(state["steps"] + steps) * BATCH]
            seconds, history = _common.timed(lambda b=batch, f=flow: f.fit(
                b, batch_size=BATCH, epochs=1, shuffle=False, verbose=0))
            if state["steps"] == 0:
                state["compile_s"] = seconds  # the first execution compiles: timed apart
            else:
                state["train_s"] += seconds
            state["steps"] += steps
            losses.append(history.history["bits_per_dim"][-1])
            print(f"{name:8s} {state['steps']:5d} steps {state['train_s']:7.1f}s "
                  f"train bits/dim {losses[-1]:.3f}", flush=True)
        state["train_images_per_s"] = (state["steps"] - SPE) * BATCH / max(state["train_s"], 1e-9)
        state["test_bits_per_dim"] = float(np.mean(flow.bits_per_dim(x_test, num_draws=DRAWS,
                                                                     seed=1)))
        state["train_curve_bits_per_dim"] = losses
        if name == "tarflow":
            cached, uncached, difference = tarflow_sampling(flow, repeats)
            state.update(sample_images_per_s=cached[0], sample_compile_s=cached[1],
                         uncached_sample_images_per_s=uncached[0],
                         uncached_sample_compile_s=uncached[1],
                         cached_minus_uncached_max=difference)
            if args.noise_std:
                state["noisy_bits_per_dim"] = bits(np.concatenate(
                    [denoise.noisy_log_prob(flow, x_test, seed=s) for s in range(DRAWS)]), size)
            if args.pictures:
                state["pictures"] = pictures(flow, Path(args.pictures), args.data, values)
        else:
            state["sample_images_per_s"], state["sample_compile_s"], _ = sampling_rate(flow,
                                                                                    repeats)
        results[name] = state
        print(f"{name}: {state['params']:,} parameters, test bound "
              f"{state['test_bits_per_dim']:.4f} bits/dim"
              + (f", noisy model {state['noisy_bits_per_dim']:.4f}"
                 if "noisy_bits_per_dim" in state else "")
              + f", train {state['train_images_per_s']:.0f} images/s, sample "
              f"{state['sample_images_per_s']:.0f} images/s", flush=True)

    tar = results["tarflow"]
    label = f"{args.data} ({total} steps, batch {BATCH})"
    rows = []
    for base in names[1:] or [None]:
        other = results.get(base, {})
        note = f"baseline = our {base}" if base else ""
        rows += [
            _common.row(f"{label}: test bits/dim (bound)", tar["test_bits_per_dim"],
                        other.get("test_bits_per_dim"), "bits/dim", note, higher_is_better=False),
            _common.row(f"{label}: train images/s (fit, XLA)", tar["train_images_per_s"],
                        other.get("train_images_per_s"), "images/s", note),
            _common.row(f"{label}: sample images/s (XLA, {SAMPLES})", tar["sample_images_per_s"],
                        other.get("sample_images_per_s"), "images/s", note),
            _common.row(f"{label}: parameters", tar["params"], other.get("params"), "", note),
        ]
    rows.append(_common.row(f"{label}: TarFlow sampling, cached vs uncached",
                            tar["sample_images_per_s"], tar["uncached_sample_images_per_s"],
                            "images/s", f"max difference {tar['cached_minus_uncached_max']:.2g}"))
    if "noisy_bits_per_dim" in tar:
        rows.append(_common.row(f"{label}: noisy model -log p(k+u+sigma eps), not a bound",
                                tar["noisy_bits_per_dim"], None, "bits/dim",
                                f"noise_std {args.noise_std}", higher_is_better=False))
    details = {"data": args.data, "batch": BATCH, "learning_rate": args.lr,
               "clipnorm": args.clipnorm, "weight_decay": args.weight_decay,
               "cosine": args.cosine, "steps": total,
               "steps_per_execution": SPE, "draws": DRAWS, "noise_std": args.noise_std,
               "settings": {n: kwargs[n] for n in names}, "results": results,
               "note": "CPU timings on the machine in 'machine', shared with other jobs"}
    suffix = "" if args.data == "digits" else f"_{args.data}"
    suffix += f"_noise{args.noise_std:g}" if args.noise_std else ""
    suffix += "_" + args.tarflow.replace("=", "").replace(",", "_") if args.tarflow else ""
    suffix += f"_clip{args.clipnorm:g}" if args.clipnorm != 1.0 else ""
    suffix += f"_wd{args.weight_decay:g}" if args.weight_decay is not None else ""
    suffix += "_cosine" if args.cosine else ""
    _common.write_results(f"tarflow{suffix}", args, rows, details)


if __name__ == "__main__":
    main()
