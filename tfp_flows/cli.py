"""The ``tfp-flows`` command: train, evaluate, sample and export flows.

``tfp-flows train`` with no arguments trains the default RealNVP on two moons and
leaves a model, a density picture and a served export in ``./tfp-flows-out``.
Bad input exits with status 2 and one line saying what is wrong.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import sys
from pathlib import Path

EXIT_USAGE = 2


class UsageError(Exception):
    """A problem with the user's input: reported in one line, exit status 2."""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tfp-flows", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)

    train = commands.add_parser("train", help="train a flow and write model, pictures, export")
    train.add_argument("--data", default="two_moons",
                       help="two_moons, digits, mnist, or a .npy/.npz/.csv file (default two_moons)")
    train.add_argument("--model", choices=["auto", "realnvp", "glow"], default="auto",
                       help="realnvp for vectors, glow for images (default: by data shape)")
    train.add_argument("--coupling", choices=["affine", "additive", "prelu"], default="affine")
    train.add_argument("--num-steps", type=int,
                       help="couplings (RealNVP, 16) or steps per level (Glow, 4)")
    train.add_argument("--num-levels", type=int, default=2, help="Glow levels (default 2)")
    train.add_argument("--hidden", type=int, help="MLP width (64) or Glow channels (128)")
    train.add_argument("--levels", type=int,
                       help="discrete pixel values of integer image files (default from data)")
    train.add_argument("--epochs", type=int, default=40)
    train.add_argument("--batch-size", type=int, default=256)
    train.add_argument("--learning-rate", type=float, default=2e-3,
                       help="peak of a 200-step warmup then cosine decay (default 2e-3)")
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--jit", action=argparse.BooleanOptionalAction, default=True,
                       help="compile the training step with XLA (default on)")
    train.add_argument("--strategy", choices=["default", "mirrored", "multiworker"],
                       default="default", help="tf.distribute strategy (default: one device)")
    train.add_argument("--backup-dir",
                       help="resume a killed run from here (keras BackupAndRestore)")
    train.add_argument("--out", default="tfp-flows-out", help="output directory")

    evaluate = commands.add_parser("evaluate", help="test NLL and bits/dim of a saved model")
    evaluate.add_argument("model", help="a .keras file written by train")
    evaluate.add_argument("--data", default="two_moons")
    evaluate.add_argument("--seed", type=int, default=0, help="split seed used for data files")

    sample = commands.add_parser("sample", help="draw samples to .npy and a picture")
    sample.add_argument("model")
    sample.add_argument("--num-samples", "-n", type=int, default=64)
    sample.add_argument("--temperature", type=float, default=1.0)
    sample.add_argument("--seed", type=int, default=0)
    sample.add_argument("--out", default="tfp-flows-samples")

    export = commands.add_parser("export", help="write a TensorFlow Serving SavedModel")
    export.add_argument("model")
    export.add_argument("--out", default="tfp-flows-export", help="model base path")
    export.add_argument("--version", type=int, default=1)
    export.add_argument("--next-version", action="store_true")
    return parser


# -- data ---------------------------------------------------------------------------------

def load_data(spec: str, seed: int = 0, levels: int | None = None):
    """``(x_train, x_test, levels)`` from a bundled name or a file (90/10 seeded split)."""
    import numpy as np

    from tfp_flows import data, io

    if spec in data.DATASETS:
        (x, _), (x_test, _) = data.load(spec)
        return x, x_test, data.LEVELS[spec]
    if not any(spec.lower().endswith(s) for s in (".npy", ".npz", ".csv")) and not Path(spec).exists():
        raise UsageError(f"unknown data set {spec!r}; expected one of "
                         f"{', '.join(data.DATASETS)} or a path to a .npy, .npz or .csv file.")
    array = io.load_array(spec)
    if array.ndim == 3:
        array = array[..., None]  # [N, H, W] grey images
    if array.dtype.kind in "iu":
        if array.ndim != 4:
            array = array.astype(np.float32)
        else:
            top = int(array.max()) + 1
            levels = levels or 2 ** max(1, math.ceil(math.log2(max(top, 2))))
            if array.min() < 0 or top > levels:
                raise UsageError(f"{spec}: integer images must lie in [0, {levels}); got values "
                                 f"in [{array.min()}, {top - 1}]. Pass --levels.")
    order = np.random.default_rng(seed).permutation(len(array))
    cut = max(1, len(array) // 10)
    return array[order[cut:]], array[order[:cut]], levels if array.ndim == 4 else None


def build_model(x, args, levels):
    import tfp_flows

    images = x.ndim == 4
    kind = args.model if args.model != "auto" else ("glow" if images else "realnvp")
    if kind == "realnvp":
        if x.ndim != 2:
            raise UsageError(f"realnvp needs vector data (rows, features); got shape {x.shape}. "
                             "Use --model glow for images.")
        return tfp_flows.RealNVP(x.shape[1], num_steps=args.num_steps or 16,
                                 hidden_units=(args.hidden or 64,) * 2, coupling=args.coupling,
                                 seed=args.seed)
    if not images:
        raise UsageError(f"glow needs images (rows, H, W, C); got shape {x.shape}. "
                         "Use --model realnvp for vectors.")
    return tfp_flows.Glow(x.shape[1:], num_levels=args.num_levels, num_steps=args.num_steps or 4,
                          hidden_channels=args.hidden or 128, coupling=args.coupling,
                          levels=levels, seed=args.seed)


# -- outputs --------------------------------------------------------------------------------

class Staging:
    """Writes into a hidden sibling of ``out`` and moves the files in only on success,
    so a failed run never leaves partial output looking like a result."""

    def __init__(self, out: str, keep: bool = True):
        self.out = Path(out)
        self.keep = keep  # False: a non-chief worker, whose files are dropped
        self.path = self.out.parent / f".{self.out.name}.partial-{os.getpid()}"

    def __enter__(self) -> Path:
        shutil.rmtree(self.path, ignore_errors=True)
        self.path.mkdir(parents=True)
        return self.path

    def __exit__(self, kind, value, traceback):
        if kind is None and self.keep:
            self.out.mkdir(parents=True, exist_ok=True)
            for item in self.path.iterdir():
                target = self.out / item.name
                if target.is_dir():
                    shutil.rmtree(target)
                elif target.exists():
                    target.unlink()
                item.rename(target)
        shutil.rmtree(self.path, ignore_errors=True)
        return False


def _pictures(flow, x_train, samples, history, out: Path) -> list[str]:
    from tfp_flows import plots
    from tfp_flows.data import MissingExtraError

    try:
        written = []
        if history is not None:
            plots.loss_curves(history, out / "loss.png")
            written.append("loss.png")
        if flow.event_shape == (2,):
            plots.density_2d(flow, x_train, out / "density.png", samples=samples)
            written.append("density.png")
        elif len(flow.event_shape) == 3:
            plots.image_grid(samples, out / "samples.png", plots._levels(flow))
            written.append("samples.png")
        return written
    except MissingExtraError as error:
        print(f"tfp-flows: no pictures: {error}", file=sys.stderr)
        return []


def _score(flow, x_test, batch_size: int = 1024):
    import numpy as np

    log_prob = np.concatenate([flow.log_prob(x_test[i:i + batch_size]).numpy()
                               for i in range(0, len(x_test), batch_size)])
    nll = float(-log_prob.mean())
    return nll, nll / (flow.event_size * math.log(2.0))


# -- commands -------------------------------------------------------------------------------

def cmd_train(args):
    import keras
    import numpy as np

    from tfp_flows.callbacks import StopOnNonFiniteLoss
    from tfp_flows.distribute import is_chief, strategy_scope

    for name in ("epochs", "batch_size"):
        if getattr(args, name) < 1:
            flag = "--" + name.replace("_", "-")
            raise UsageError(f"{flag} must be at least 1; got {getattr(args, name)}.")
    keras.utils.set_random_seed(args.seed)
    x_train, x_test, levels = load_data(args.data, args.seed, args.levels)
    with strategy_scope(args.strategy) as strategy:
        flow = build_model(x_train, args, levels)
        total = args.epochs * -(-len(x_train) // args.batch_size)
        warmup = min(200, total // 10)
        schedule = keras.optimizers.schedules.CosineDecay(
            0.0, decay_steps=max(1, total - warmup), warmup_target=args.learning_rate,
            warmup_steps=warmup)
        flow.compile(optimizer=keras.optimizers.Adam(schedule), jit_compile=args.jit,
                     steps_per_execution=10)
    print(f"tfp-flows: {flow.name} with {flow.count_params():,} parameters on {args.data} "
          f"({len(x_train)} train / {len(x_test)} test, {strategy.num_replicas_in_sync} "
          f"replica(s)); writing to {args.out}", flush=True)
    chief = is_chief(strategy)
    callbacks = [StopOnNonFiniteLoss()]
    if args.backup_dir:
        # double_checkpoint keeps the previous backup, so a kill during a write
        # never leaves the run without a readable one.
        callbacks.append(keras.callbacks.BackupAndRestore(args.backup_dir, double_checkpoint=True))
    with Staging(args.out if chief else f"{args.out}.worker-{os.getpid()}", keep=chief) as out:
        history = flow.fit(x_train, batch_size=args.batch_size, epochs=args.epochs,
                           validation_data=(x_test,), callbacks=callbacks,
                           verbose=1 if sys.stdout.isatty() else 2)
        nll, bpd = _score(flow, x_test)
        flow.save(out / "model.keras")
        history = {k: [float(v) for v in vs] for k, vs in history.history.items()}
        (out / "history.json").write_text(json.dumps(history, indent=1))
        samples = flow.sample(1000 if flow.event_shape == (2,) else 64, seed=args.seed).numpy()
        np.save(out / "samples.npy", samples)
        pictures = _pictures(flow, x_train, samples, history, out)
        flow.export(out / "export")
        metrics = {"test_nll": nll, "test_bits_per_dim": bpd, "data": args.data,
                   "epochs": len(history["loss"]), "parameters": flow.count_params()}
        (out / "metrics.json").write_text(json.dumps(metrics, indent=1))
    print(f"test NLL {nll:.4f} nats, {bpd:.4f} bits/dim")
    if not chief:
        print("non-chief worker: the chief writes the outputs")
        return
    print(f"wrote {args.out}/: model.keras, history.json, metrics.json, samples.npy, "
          f"{', '.join(pictures + ['export/1'])}")


def cmd_evaluate(args):
    from tfp_flows.io import load_flow

    flow = load_flow(args.model)
    _, x_test, _ = load_data(args.data, args.seed)
    if x_test.shape[1:] != flow.event_shape:
        raise UsageError(f"{args.data} has examples of shape {x_test.shape[1:]}; the model "
                         f"expects {flow.event_shape}.")
    nll, bpd = _score(flow, x_test)
    print(f"test NLL {nll:.4f} nats, {bpd:.4f} bits/dim on {len(x_test)} examples")


def cmd_sample(args):
    import numpy as np

    from tfp_flows.io import load_flow

    flow = load_flow(args.model)
    if flow.conditional:
        raise UsageError(f"{args.model} is a conditional flow; sample it from Python with "
                         "flow.sample(n, context=...).")
    samples = flow.sample(args.num_samples, seed=args.seed, temperature=args.temperature).numpy()
    with Staging(args.out) as out:
        np.save(out / "samples.npy", samples)
        pictures = _pictures(flow, samples, samples, None, out)
    print(f"wrote {args.out}/: samples.npy {', '.join(pictures)}")


def cmd_export(args):
    from tfp_flows.io import load_flow

    flow = load_flow(args.model)
    print(f"wrote {flow.export(args.out, args.version, args.next_version)}")


COMMANDS = {"train": cmd_train, "evaluate": cmd_evaluate, "sample": cmd_sample,
            "export": cmd_export}


def main(argv=None) -> int:
    args = _parser().parse_args(argv)
    from tfp_flows.data import MissingExtraError

    try:
        import tfp_flows  # noqa: F401  (imports TensorFlow quietly)

        COMMANDS[args.command](args)
    except (UsageError, ValueError, FileNotFoundError, FileExistsError, MissingExtraError) as error:
        message = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        print(f"tfp-flows: error: {message}", file=sys.stderr)
        return EXIT_USAGE
    return 0


if __name__ == "__main__":
    sys.exit(main())
