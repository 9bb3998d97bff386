"""The ``tfp-flows`` command: train, evaluate, sample and export flows.

``tfp-flows train`` with no arguments trains the default RealNVP on two moons and
leaves a model, a density picture and a served export in ``./tfp-flows-out``;
``tfp-flows train --data faces`` trains a Glow on faces, and ``--data path/to/folder
--image-size 32`` on a folder of PNG and JPEG images, streamed.
Bad input exits with status 2 and one line saying what is wrong.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import sys
import warnings
from pathlib import Path

# The command is the public surface; the helpers below serve it and the tests.
__all__ = ["main"]

EXIT_USAGE = 2


class UsageError(Exception):
    """A problem with the user's input: reported in one line, exit status 2."""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tfp-flows", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)

    train = commands.add_parser("train", help="train a flow and write model, pictures, export")
    train.add_argument("--data", default="two_moons",
                       help="two_moons, digits, mnist, faces, a .npy/.npz/.csv file, or a folder "
                            "of PNG/JPEG images (default two_moons)")
    from tfp_flows.models import IMAGE_BUILDERS, VECTOR_BUILDERS
    from tfp_flows.models.builders import COUPLINGS

    train.add_argument("--model", choices=["auto", *VECTOR_BUILDERS, *IMAGE_BUILDERS],
                       default="auto", help="realnvp, nsf (spline couplings) or maf "
                       "(autoregressive) for vectors, glow, jet (ViT couplings) or tarflow "
                       "(Transformer autoregressive blocks) for images (default: by data shape)")
    train.add_argument("--coupling", choices=list(COUPLINGS),
                       default="affine", help="coupling of RealNVP, Glow and Jet (default affine)")
    train.add_argument("--num-steps", type=int,
                       help="couplings (RealNVP 16, Jet 8), TarFlow blocks (8) or steps per level "
                            "(Glow, 4)")
    train.add_argument("--num-levels", type=int, default=2, help="Glow levels (default 2)")
    train.add_argument("--hidden", type=int,
                       help="MLP width (64), Glow channels (128) or Jet / TarFlow Transformer "
                            "width (64)")
    train.add_argument("--num-values", type=int,
                       help="discrete values per pixel of integer image files, e.g. 256 "
                            "(default from data)")
    train.add_argument("--levels", dest="renamed_levels", help=argparse.SUPPRESS)
    train.add_argument("--epochs", type=int, help="default 40 (image folders 20)")
    train.add_argument("--batch-size", type=int, help="default 256 (faces 16, image folders 32)")
    train.add_argument("--learning-rate", type=float,
                       help="peak of a 200-step warmup then cosine decay (default 2e-3; faces "
                            "and image folders 1e-3)")
    _image_options(train, "default 32", "default 1")
    train.add_argument("--hflip", action=argparse.BooleanOptionalAction, default=None,
                       help="train on left-right mirrored images too (default: on for faces)")
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--jit", action=argparse.BooleanOptionalAction,
                       help="compile the training step with XLA (default on; off for faces)")
    train.add_argument("--strategy", choices=["default", "mirrored", "multiworker"],
                       default="default", help="tf.distribute strategy (default: one device)")
    train.add_argument("--backup-dir",
                       help="resume a killed run from here (keras BackupAndRestore)")
    train.add_argument("--out", default="tfp-flows-out", help="output directory")

    evaluate = commands.add_parser("evaluate", help="test NLL and bits/dim of a saved model")
    evaluate.add_argument("model", help="a .keras file written by train")
    evaluate.add_argument("--data", default="two_moons")
    evaluate.add_argument("--seed", type=int, default=0, help="split seed used for data files")
    _image_options(evaluate, "default: the model's", "default: the model's")

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


def _image_options(parser, size_default: str, channels_default: str):
    parser.add_argument("--image-size", type=int,
                        help=f"side of the square images read from a folder ({size_default})")
    parser.add_argument("--channels", type=int, choices=[1, 3],
                        help=f"1 (grey) or 3 (RGB) for images read from a folder "
                             f"({channels_default})")


# Training defaults by data set; flags override them. Faces: 80 training images are
# few enough that a wider Glow, or more epochs, overfits within a minute (test bits/dim
# then climbs), so the Glow is narrow and the faces are mirrored; its 400 small steps
# take less time than XLA takes to compile them on a CPU.
TRAIN_DEFAULTS = {
    "faces": {"epochs": 40, "batch_size": 16, "learning_rate": 1e-3, "hidden": 64, "hflip": True,
              "jit": False},
    "folder": {"epochs": 20, "batch_size": 32, "learning_rate": 1e-3, "image_size": 32,
               "channels": 1, "jit": True},
    None: {"epochs": 40, "batch_size": 256, "learning_rate": 2e-3, "jit": True},
}


def _fill_defaults(args, kind: str | None) -> None:
    for name, value in TRAIN_DEFAULTS.get(kind, TRAIN_DEFAULTS[None]).items():
        if getattr(args, name, None) is None:
            setattr(args, name, value)


# -- data ---------------------------------------------------------------------------------

def is_folder(spec: str, image_size: int | None) -> bool:
    """Whether ``--data`` names an image folder: an existing folder, or any path that is
    not a bundled name or a data file when ``--image-size`` is given."""
    from tfp_flows import data

    if spec in data.DATASETS:
        return False
    if Path(spec).is_dir():
        return True
    return image_size is not None and not any(
        spec.lower().endswith(s) for s in (".npy", ".npz", ".csv"))


def _check_image_size(size: int, num_levels: int) -> None:
    factor = 2 ** num_levels
    if size < factor or size % factor:
        raise UsageError(f"--image-size {size}: the Glow halves the side {num_levels} times "
                         f"(--num-levels); expected a multiple of {factor}, such as "
                         f"{max(factor, 32 // factor * factor)}.")


def load_folder(path: str, image_size: int, channels: int, batch_size: int, seed: int,
                hflip: bool = False, train: bool = True):
    """``(train, test, example, num_train, num_test)`` from an image folder: the 90/10 split of
    the files seeded by ``seed``, as streamed ``tf.data`` pipelines of uint8 batches
    (``train`` None unless asked for); ``example`` is the first test batch (NumPy)."""
    import tensorflow as tf

    from tfp_flows import data

    files = data.image_files(path)  # FileNotFoundError / ValueError: one line, exit 2
    if len(files) < 2:
        raise UsageError(f"{path}: found {len(files)} image; expected at least 2 (one to train, "
                         "one to test).")
    split = {"validation_split": 0.1, "seed": seed, "channels": channels}
    num_train = len(data.split_files(files, 0.1, "training", seed))
    test = data.image_folder(path, image_size, batch_size=min(batch_size, 256), shuffle=False,
                             subset="validation", **split)
    example = next(iter(test), None)
    if example is None:
        raise UsageError(f"{path}: none of the test images could be read; expected PNG or "
                         "JPEG files.")
    if not train:
        return None, test, example.numpy(), num_train, len(files) - num_train
    batch = min(batch_size, num_train)
    # Whole batches only: the XLA-compiled step then never meets a second shape.
    train = data.image_folder(path, image_size, batch_size=batch, shuffle=True, subset="training",
                              drop_remainder=True, **split)
    if hflip:
        train = train.map(tf.image.random_flip_left_right)
    if next(iter(train), None) is None:
        raise UsageError(f"{path}: fewer than {batch} training images could be read; expected "
                         "PNG or JPEG files (or pass a smaller --batch-size).")
    return train, test, example.numpy(), num_train, len(files) - num_train


def load_data(spec: str, seed: int = 0, num_values: int | None = None):
    """``(x_train, x_test, num_values)`` from a bundled name or a file (90/10 seeded split);
    ``num_values`` is None for continuous data."""
    import numpy as np

    from tfp_flows import data, io

    if spec in data.DATASETS:
        (x, _), (x_test, _) = data.load(spec)
        return x, x_test, data.NUM_VALUES[spec]
    if not any(spec.lower().endswith(s) for s in (".npy", ".npz", ".csv")) and not Path(spec).exists():
        raise UsageError(f"unknown data set {spec!r}; expected one of "
                         f"{', '.join(data.DATASETS)}, a .npy, .npz or .csv file, or an image folder.")
    array = io.load_array(spec)
    if array.ndim == 3:
        array = array[..., None]  # [N, H, W] grey images
    if array.dtype.kind in "iu":
        if array.ndim != 4:
            array = array.astype(np.float32)
        else:
            top = int(array.max()) + 1
            num_values = num_values or 2 ** max(1, math.ceil(math.log2(max(top, 2))))
            if array.min() < 0 or top > num_values:
                raise UsageError(f"{spec}: integer images must lie in [0, {num_values}); got "
                                 f"values in [{array.min()}, {top - 1}]. Pass --num-values.")
    order = np.random.default_rng(seed).permutation(len(array))
    cut = max(1, len(array) // 10)
    return array[order[cut:]], array[order[:cut]], num_values if array.ndim == 4 else None


def build_model(x, args, num_values):
    from tfp_flows.models import IMAGE_BUILDERS, VECTOR_BUILDERS

    images = x.ndim == 4
    kind = args.model if args.model != "auto" else ("glow" if images else "realnvp")
    if kind in VECTOR_BUILDERS:
        if x.ndim != 2:
            raise UsageError(f"{kind} needs vector data (rows, features); got shape {x.shape}. "
                             "Use --model glow for images.")
        builder = VECTOR_BUILDERS[kind]
        if kind == "realnvp":
            return builder(x.shape[1], num_steps=args.num_steps or 16,
                           hidden_units=(args.hidden or 64,) * 2, coupling=args.coupling,
                           seed=args.seed)
        steps = {} if args.num_steps is None else {"num_steps": args.num_steps}
        return builder(x.shape[1], hidden_units=(args.hidden or 64,) * 2, seed=args.seed, **steps)
    if not images:
        raise UsageError(f"{kind} needs images (rows, H, W, C); got shape {x.shape}. "
                         "Use --model realnvp for vectors.")
    builder = IMAGE_BUILDERS[kind]
    if kind == "jet":
        from tfp_flows.models.jet import default_patch_size

        return builder(x.shape[1:], num_couplings=args.num_steps or 8,
                       patch_size=default_patch_size(x.shape[1:]), width=args.hidden or 64,
                       coupling=args.coupling, num_values=num_values, seed=args.seed)
    if kind == "tarflow":
        return builder(x.shape[1:], num_blocks=args.num_steps or 8, width=args.hidden or 64,
                       num_values=num_values, seed=args.seed)
    return builder(x.shape[1:], num_levels=args.num_levels, num_steps=args.num_steps or 4,
                   hidden_channels=args.hidden or 128, coupling=args.coupling,
                   num_values=num_values, seed=args.seed)


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


def _pictures(flow, x_train, samples, history, out: Path, seed: int = 0,
              title: str = "x") -> list[str]:
    """Writes the pictures; for images ``x_train`` holds a few real images (or samples)."""
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
            plots.image_grid(samples, out / "samples.png", flow.num_values)
            plots.temperatures(flow, out / "temperatures.png", seed=seed)
            plots.normalizing(flow, x_train[:6], out / "normalizing.png", title=title)
            written += ["samples.png", "temperatures.png", "normalizing.png"]
            if len(x_train) >= 2:
                plots.interpolation(flow, x_train[0], x_train[1], out / "interpolation.png")
                written.append("interpolation.png")
        return written
    except MissingExtraError as error:
        print(f"tfp-flows: no pictures: {error}", file=sys.stderr)
        return []


def evaluate_data(flow, x_test, batch_size: int = 1024):
    """``(nll, bits/dim, examples)`` on an array or a dataset of batches. For a dequantized
    flow both are the uniform-dequantization bound, one draw of ``u`` per example,
    seeded by the batch's index (so ``train`` and ``evaluate`` print the same numbers)."""
    import numpy as np
    import tensorflow as tf

    from tfp_flows.metrics import bits_per_dim

    batches = (x_test if isinstance(x_test, tf.data.Dataset)
               else (x_test[i:i + batch_size] for i in range(0, len(x_test), batch_size)))
    log_prob = [flow.log_prob(batch, num_draws=1, seed=index).numpy()
                for index, batch in enumerate(batches)]
    if not log_prob:
        raise UsageError("no test examples to score.")
    nll = float(-np.concatenate(log_prob).mean())
    return nll, bits_per_dim(nll, flow.event_size), sum(len(lp) for lp in log_prob)


# -- commands -------------------------------------------------------------------------------

def cmd_train(args):
    import keras
    import numpy as np

    from tfp_flows.callbacks import StopOnNonFiniteLoss
    from tfp_flows.data import histogram_bits_per_dim
    from tfp_flows.distribute import is_chief, strategy_scope
    from tfp_flows.models import VECTOR_BUILDERS

    if args.renamed_levels is not None:
        raise UsageError("--levels was renamed --num-values (the number of discrete values per "
                         "pixel, e.g. 256).")
    folder = is_folder(args.data, args.image_size)
    _fill_defaults(args, "folder" if folder else args.data)
    for name in ("epochs", "batch_size"):
        if getattr(args, name) < 1:
            flag = "--" + name.replace("_", "-")
            raise UsageError(f"{flag} must be at least 1; got {getattr(args, name)}.")
    keras.utils.set_random_seed(args.seed)
    baseline = None
    if folder:
        if args.model in VECTOR_BUILDERS:
            raise UsageError(f"--model {args.model} is for vectors; an image folder trains an "
                             "image flow (--model glow, the default).")
        _check_image_size(args.image_size, args.num_levels)
        x_train, x_test, example, num_train, num_test = load_folder(
            args.data, args.image_size, args.channels, args.batch_size, args.seed, args.hflip)
        num_values, steps_per_epoch = 256, max(1, num_train // min(args.batch_size, num_train))
        mirrored = bool(args.hflip)
    else:
        x_train, x_test, num_values = load_data(args.data, args.seed, args.num_values)
        mirrored = bool(args.hflip) and x_train.ndim == 4
        if mirrored:
            x_train = np.concatenate([x_train, x_train[:, :, ::-1]])
        if num_values and x_train.ndim == 4:
            baseline = histogram_bits_per_dim(x_train, x_test, num_values)
        example, num_train, num_test = x_train, len(x_train), len(x_test)
        steps_per_epoch = -(-num_train // args.batch_size)
    with strategy_scope(args.strategy) as strategy:
        flow = build_model(example, args, num_values)
        total = args.epochs * steps_per_epoch
        warmup = min(200, total // 10)
        schedule = keras.optimizers.schedules.CosineDecay(
            0.0, decay_steps=max(1, total - warmup), warmup_target=args.learning_rate,
            warmup_steps=warmup)
        # TarFlow's Transformers train unstably without clipping (README, TarFlow).
        clipnorm = 1.0 if args.model == "tarflow" else None
        # An execution never spans epochs (a repeated folder dataset would run on).
        flow.compile(optimizer=keras.optimizers.Adam(schedule, clipnorm=clipnorm),
                     jit_compile=args.jit,
                     steps_per_execution=min(10, steps_per_epoch))
    print(f"tfp-flows: {flow.name} with {flow.count_params():,} parameters on {args.data} "
          f"({num_train // (1 + (mirrored and not folder))} train"
          f"{' + mirrored copies' if mirrored else ''} / {num_test} "
          f"test, {strategy.num_replicas_in_sync} replica(s)); writing to {args.out}", flush=True)
    if baseline is not None:
        print(f"baseline: independent per-pixel histograms (add-one smoothing) fitted on the "
              f"training images: {baseline:.4f} bits/dim on test", flush=True)
    chief = is_chief(strategy)
    callbacks = [StopOnNonFiniteLoss()]
    if args.backup_dir:
        # double_checkpoint keeps the previous backup, so a kill during a write
        # never leaves the run without a readable one.
        callbacks.append(keras.callbacks.BackupAndRestore(args.backup_dir, double_checkpoint=True))
    with Staging(args.out if chief else f"{args.out}.worker-{os.getpid()}", keep=chief) as out:
        with warnings.catch_warnings():
            # A folder's test set has no known length (unreadable files are dropped as it
            # streams), so Keras finds its end by running out of data, and says so.
            # The training set repeats: an epoch is one pass over the files.
            warnings.filterwarnings("ignore", message="Your input ran out of data")
            history = flow.fit(x_train.repeat() if folder else x_train,
                               batch_size=None if folder else args.batch_size,
                               steps_per_epoch=steps_per_epoch if folder else None,
                               epochs=args.epochs, shuffle=not folder,
                               validation_data=x_test if folder else (x_test,),
                               callbacks=callbacks, verbose=1 if sys.stdout.isatty() else 2)
        nll, bpd, _ = evaluate_data(flow, x_test)
        flow.save(out / "model.keras")
        history = {k: [float(v) for v in vs] for k, vs in history.history.items()}
        (out / "history.json").write_text(json.dumps(history, indent=1))
        samples = flow.sample(1000 if flow.event_shape == (2,) else 64, seed=args.seed).numpy()
        np.save(out / "samples.npy", samples)
        if folder:  # a few test images, and training images in case those are too few
            real = np.concatenate([example[:6], next(iter(x_train)).numpy()[:6]])
        else:
            real = x_test if x_train.ndim == 4 else x_train
        pictures = _pictures(flow, real, samples, history, out, args.seed)
        flow.export(out / "export")
        metrics = {"test_nll": nll, "test_bits_per_dim": bpd, "data": args.data,
                   "epochs": len(history["loss"]), "parameters": flow.count_params()}
        if baseline is not None:
            metrics["histogram_baseline_bits_per_dim"] = baseline
        (out / "metrics.json").write_text(json.dumps(metrics, indent=1))
    print(f"test NLL {nll:.4f} nats, {bpd:.4f} bits/dim"
          + (" (uniform-dequantization bound)" if flow.discrete else ""))
    if not chief:
        print("non-chief worker: the chief writes the outputs")
        return
    print(f"wrote {args.out}/: model.keras, history.json, metrics.json, samples.npy, "
          f"{', '.join(pictures + ['export/1'])}")


def cmd_evaluate(args):
    from tfp_flows.io import load_flow

    flow = load_flow(args.model)
    if is_folder(args.data, args.image_size):
        if len(flow.event_shape) != 3:
            raise UsageError(f"{args.model} is a flow for vectors of shape {flow.event_shape}; "
                             "an image folder needs an image flow.")
        size, channels = args.image_size or flow.event_shape[0], args.channels or flow.event_shape[2]
        if (size, size, channels) != flow.event_shape:
            raise UsageError(f"--image-size {size} --channels {channels} gives images of shape "
                             f"{(size, size, channels)}; the model expects {flow.event_shape}.")
        _, x_test, example, _, _ = load_folder(args.data, size, channels, 256, args.seed,
                                               train=False)
        shape = example.shape[1:]
    else:
        _, x_test, _ = load_data(args.data, args.seed)
        shape = x_test.shape[1:]
    if shape != flow.event_shape:
        raise UsageError(f"{args.data} has examples of shape {shape}; the model "
                         f"expects {flow.event_shape}.")
    nll, bpd, count = evaluate_data(flow, x_test)
    print(f"test NLL {nll:.4f} nats, {bpd:.4f} bits/dim"
          + (" (uniform-dequantization bound)" if flow.discrete else "")
          + f" on {count} examples")


def cmd_sample(args):
    import numpy as np

    from tfp_flows.io import load_flow

    flow = load_flow(args.model)
    if flow.conditional:
        raise UsageError(f"{args.model} is a conditional flow; sample it from Python with "
                         "flow.sample(n, context=...).")
    samples = flow.sample(args.num_samples, seed=args.seed, temperature=args.temperature).numpy()
    shown = samples
    if flow.discrete:  # a sample k + u of a dequantized flow is the pixel value k
        shown = np.clip(np.floor(samples), 0, flow.num_values - 1).astype(np.int32)
    with Staging(args.out) as out:
        np.save(out / "samples.npy", samples)
        pictures = _pictures(flow, shown, samples, None, out, args.seed, title="sample")
    print(f"wrote {args.out}/: samples.npy {', '.join(pictures)}")


def cmd_export(args):
    from tfp_flows.io import load_flow

    flow = load_flow(args.model)
    print(f"wrote {flow.export(args.out, args.version, args.next_version)}")


COMMANDS = {"train": cmd_train, "evaluate": cmd_evaluate, "sample": cmd_sample,
            "export": cmd_export}


def main(argv=None) -> int:
    """Runs the ``tfp-flows`` command (the console script's entry point).

    Args:
        argv: the arguments after the program name, as a list of strings; None reads
            ``sys.argv``.

    Returns:
        The exit status: 0 on success, 2 when the input is bad (after one line on
        standard error saying what is wrong).

    Examples:
        >>> main(["train", "--data", "no_such_file.csv"])
        2
    """
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
