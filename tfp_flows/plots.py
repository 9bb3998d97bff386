"""Pictures of a flow (needs matplotlib: ``pip install 'tfp-flows[plot]'``)."""

from __future__ import annotations

import numpy as np

from tfp_flows.data import MissingExtraError


def _pyplot():
    try:
        import matplotlib
    except ImportError as error:
        raise MissingExtraError("pictures need matplotlib: pip install matplotlib "
                                "(or pip install 'tfp-flows[plot]')") from error
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def density_2d(flow, data, path, samples=None, resolution: int = 200, context=None):
    """Heat map of the learned density of a 2-D flow with the data (and samples) over it.

    Args:
        flow: a flow of 2-D vectors.
        data: ``[N, 2]`` points drawn over the density; they set the plotted range.
        path: the PNG file to write.
        samples: ``[M, 2]`` samples for a second panel, or None.
        resolution: grid points per side.
        context: one context for a conditional flow (a vector, or a label).

    Examples:
        >>> import pathlib, tempfile, numpy as np, tfp_flows
        >>> flow = tfp_flows.RealNVP(2, num_steps=2, hidden_units=(8,))
        >>> path = pathlib.Path(tempfile.mkdtemp()) / "density.png"
        >>> density_2d(flow, np.zeros((3, 2), np.float32), path, resolution=20)
        >>> path.exists()
        True
    """
    plt = _pyplot()
    low, high = data.min(0) - 0.5, data.max(0) + 0.5
    xs, ys = np.linspace(low[0], high[0], resolution), np.linspace(low[1], high[1], resolution)
    grid = np.stack(np.meshgrid(xs, ys), -1).reshape(-1, 2).astype(np.float32)
    c = None if context is None else np.repeat(np.asarray(context)[None], len(grid), 0)
    density = np.exp(flow.log_prob(grid, c).numpy()).reshape(resolution, resolution)
    panels = 1 if samples is None else 2
    figure, axes = plt.subplots(1, panels, figsize=(5 * panels, 4.5), squeeze=False)
    axes[0, 0].imshow(density, origin="lower", extent=(low[0], high[0], low[1], high[1]),
                      aspect="auto", cmap="magma")
    axes[0, 0].scatter(data[:500, 0], data[:500, 1], s=2, c="cyan", alpha=0.5)
    axes[0, 0].set_title("learned density, data over it")
    if samples is not None:
        axes[0, 1].scatter(samples[:, 0], samples[:, 1], s=2, alpha=0.6)
        axes[0, 1].set_xlim(low[0], high[0])
        axes[0, 1].set_ylim(low[1], high[1])
        axes[0, 1].set_title("samples")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def image_grid(images, path, num_values: int | None = None, columns: int = 8, titles=None,
               row_labels=None):
    """A grid of ``[N, H, W, C]`` images scaled from ``[0, num_values)`` (or their own range).

    Args:
        images: ``[N, H, W, C]`` images, ``C`` 1 or 3.
        path: the PNG file to write.
        num_values: the images' range ``[0, num_values)``; None scales by their maximum.
        columns: images per row.
        titles: a title per image, or None.
        row_labels: a label per row, or None.

    Examples:
        >>> import pathlib, tempfile, numpy as np
        >>> path = pathlib.Path(tempfile.mkdtemp()) / "grid.png"
        >>> image_grid(np.zeros((4, 8, 8, 1)), path, num_values=17, columns=2)
        >>> path.exists()
        True
    """
    plt = _pyplot()
    images = np.asarray(images, np.float32)
    top = float(num_values) if num_values else max(float(images.max()), 1e-6)
    rows = int(np.ceil(len(images) / columns))
    figure, axes = plt.subplots(rows, columns, figsize=(columns * 1.1, rows * 1.1 + 0.3),
                                squeeze=False)
    for index, axis in enumerate(axes.flat):
        axis.axis("off")
        if index < len(images):
            image = np.clip(images[index] / top, 0.0, 1.0)
            axis.imshow(image[..., 0] if image.shape[-1] == 1 else image, cmap="gray",
                        vmin=0.0, vmax=1.0)
            if titles is not None and index < len(titles):
                axis.set_title(str(titles[index]), fontsize=7)
    if row_labels is not None:
        for row, label in enumerate(row_labels):
            axes[row, 0].text(-0.3, 0.5, str(label), transform=axes[row, 0].transAxes,
                              ha="right", va="center")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def temperatures(flow, path, temperatures=(0.0, 0.5, 0.7, 0.9, 1.0), per_row: int = 8,
                 seed: int = 0, context=None):
    """Rows of samples at several temperatures (Glow's reduced-temperature sampling).

    Args:
        flow: an image flow.
        path: the PNG file to write.
        temperatures: one row of samples per temperature.
        per_row: samples per row.
        seed: the samples' seed (the same latents scaled, row to row).
        context: one context for a conditional flow.

    Examples:
        >>> import pathlib, tempfile, tfp_flows
        >>> flow = tfp_flows.Glow((4, 4, 1), num_levels=1, num_steps=1, hidden_channels=4,
        ...                       num_values=4)
        >>> path = pathlib.Path(tempfile.mkdtemp()) / "temperatures.png"
        >>> temperatures(flow, path, temperatures=(0.0, 1.0), per_row=2)
        >>> path.exists()
        True
    """
    images = [flow.sample(per_row, context=context, seed=seed, temperature=t).numpy()
              for t in temperatures]
    image_grid(np.concatenate(images), path, flow.num_values, columns=per_row,
               row_labels=[f"T={t:g}" for t in temperatures])


def interpolation(flow, first, second, path, steps: int = 8):
    """Decodes the straight line between the latents of two images.

    Args:
        flow: an image flow.
        first: an image ``[H, W, C]``.
        second: another.
        path: the PNG file to write.
        steps: pictures along the line, both ends included.

    Examples:
        >>> import pathlib, tempfile, numpy as np, tfp_flows
        >>> flow = tfp_flows.Glow((4, 4, 1), num_levels=1, num_steps=1, hidden_channels=4,
        ...                       num_values=4)
        >>> path = pathlib.Path(tempfile.mkdtemp()) / "line.png"
        >>> interpolation(flow, np.zeros((4, 4, 1), int), np.full((4, 4, 1), 3), path, steps=3)
        >>> path.exists()
        True
    """
    z = flow.encode(np.stack([first, second])).numpy()
    weights = np.linspace(0.0, 1.0, steps)[:, None, None, None]
    images = flow.decode((1 - weights) * z[:1] + weights * z[1:]).numpy()
    image_grid(images, path, flow.num_values, columns=steps)


def latent_levels(flow) -> np.ndarray | None:
    """Which level of a multiscale flow each entry of its latent ``z = encode(x)`` belongs to.

    Returns an int array of the image's shape ``[H, W, C]``: 0 for the half that
    leaves at the first `FactorOut`, 1 for the next, ..., and the last level for what
    goes all the way through. Worked out by passing entry labels through the
    flow's reshapes (`Squeeze`, `Unsqueeze`, the channel split of `FactorOut`); the
    other layers keep their input's layout. None when a layer changes the shape in
    some other way.

    Args:
        flow: a `tfp_flows.Flow`.

    Returns:
        The level of each entry of the latent, or None (see above).

    Examples:
        >>> import tfp_flows
        >>> flow = tfp_flows.Glow((4, 4, 1), num_levels=2, num_steps=1, hidden_channels=4,
        ...                       num_values=4)
        >>> latent_levels(flow)[..., 0]
        array([[1, 1, 1, 1],
               [0, 0, 0, 0],
               [1, 1, 1, 1],
               [0, 0, 0, 0]])
    """
    import tensorflow as tf

    from tfp_flows import bijectors, layers

    if len(flow.latent_shape) != 3 or tuple(flow.latent_shape) != tuple(flow.event_shape):
        return None
    squeeze = bijectors.Squeeze()

    def trace(flow_layers, labels, depth):
        for layer in flow_layers:
            if isinstance(layer, layers.Squeeze):
                labels = squeeze.forward(labels)
            elif isinstance(layer, layers.Unsqueeze):
                labels = squeeze.inverse(labels)
            elif isinstance(layer, layers.FactorOut):
                half = labels.shape[-1] // 2
                keep, out = labels[..., :half], labels[..., half:]
                keep = trace(layer.sublayers(), keep, depth + 1)
                if keep is None:
                    return None
                labels = tf.concat([keep, tf.fill(tf.shape(out), float(depth))], -1)
            elif tuple(layer.compute_output_shape(tuple(labels.shape))) != tuple(labels.shape):
                return None
        return labels

    # -1 marks entries no factor-out took: they belong to the last level.
    labels = trace(flow.flow_layers, -tf.ones((1,) + tuple(flow.latent_shape)), 0)
    if labels is None:
        return None
    labels = labels.numpy()[0].astype(np.int64)
    labels[labels < 0] = labels.max() + 1
    return labels


def level_pictures(z, labels) -> list[np.ndarray]:
    """The entries of latents ``z`` ``[N, H, W, C]`` of each level, as pictures.

    A level's entries fill a set of whole rows and columns of ``z`` (Glow's levels
    take alternate rows of the image); the picture of a level is ``z`` on those
    rows and columns, ``[N, h, w, C]``, to be shown stretched to the image's size.
    Where a level's entries do not form such a grid, the picture is ``z`` with the
    other levels' entries set to NaN.

    Args:
        z: latents ``[N, H, W, C]``.
        labels: the level of each entry, ``[H, W, C]``, as `latent_levels` gives it.

    Returns:
        One array per level.

    Examples:
        >>> labels = np.array([[0, 0], [0, 1]])[..., None]
        >>> [picture.shape for picture in level_pictures(np.zeros((5, 2, 2, 1)), labels)]
        [(5, 2, 2, 1), (5, 1, 1, 1)]
    """
    z = np.asarray(z, np.float32)
    pictures = []
    for level in range(int(labels.max()) + 1):
        mask = (labels == level).any(-1)
        rows, columns = mask.any(1), mask.any(0)
        if mask[np.ix_(rows, columns)].all():
            pictures.append(z[:, rows][:, :, columns])
        else:
            pictures.append(np.where((labels == level)[None], z, np.nan))
    return pictures


def normalizing(flow, x, path, num_values: int | None = None, title: str = "x"):
    """Pictures of normalizing: each row an image ``x``, its latent ``z = encode(x)``,
    ``z`` of each level of the multiscale flow, and ``decode(encode(x))``, with a
    histogram of ``z`` against the standard normal it is trained to follow.

    Latents are drawn in a blue-red map from -3 (blue) to 3 (red); a colour latent's
    channels as RGB (``z / 6 + 1/2``). ``num_values`` scales the images (default: the flow's).

    Args:
        flow: an image flow.
        x: images ``[N, H, W, C]``, one row each.
        path: the PNG file to write.
        num_values: the images' range; default the flow's.
        title: the title of the images' column.

    Returns:
        ``max |decode(encode(x)) - x|`` (for a dequantized flow, against ``x + 1/2``).

    Examples:
        >>> import pathlib, tempfile, numpy as np, tfp_flows
        >>> flow = tfp_flows.Glow((4, 4, 1), num_levels=2, num_steps=1, hidden_channels=4,
        ...                       num_values=4)
        >>> path = pathlib.Path(tempfile.mkdtemp()) / "normalizing.png"
        >>> normalizing(flow, np.ones((2, 4, 4, 1), int), path) < 1e-4
        True
    """
    plt = _pyplot()
    x = np.asarray(x)
    num_values = num_values or flow.num_values
    z = flow.encode(x).numpy()
    x_back = flow.decode(z).numpy()
    # A dequantized flow encodes k + 1/2 (the middle of its bin) and decodes to it.
    shift = 0.5 if flow.discrete else 0.0
    error = float(np.abs(x_back - (x.astype(np.float32) + shift)).max())
    labels = latent_levels(flow)
    parts = [] if labels is None else level_pictures(z, labels)
    parts = parts if len(parts) > 1 else []
    names = ([title, "z = encode(x)"]
             + [f"level {i + 1} of z\n{p.shape[1]}x{p.shape[2]}" for i, p in enumerate(parts)]
             + ["decode(encode(x))", "histogram of z"])
    top = float(num_values) if num_values else max(float(x.max()), 1e-6)
    height, width = x.shape[1:3]
    figure, axes = plt.subplots(len(x), len(names), figsize=(1.45 * len(names), 1.45 * len(x) + 0.4),
                                squeeze=False)
    grid = np.linspace(-4, 4, 101)
    for row in range(len(x)):
        cells = [("image", x[row] + shift), ("latent", z[row])]
        cells += [("latent", p[row]) for p in parts] + [("image", x_back[row]), ("histogram", z[row])]
        for axis, (kind, value) in zip(axes[row], cells):
            if kind == "histogram":
                axis.hist(value.ravel(), bins=40, range=(-4, 4), density=True, color="grey")
                axis.plot(grid, np.exp(-grid**2 / 2) / np.sqrt(2 * np.pi), "r", lw=1)
                axis.set_yticks([])
                axis.tick_params(labelsize=6)
                continue
            axis.axis("off")
            extent = (0, width, height, 0)  # every picture stretched to the image's size
            if kind == "image":
                image = np.clip(value / top, 0.0, 1.0)
                axis.imshow(image[..., 0] if image.shape[-1] == 1 else image, cmap="gray",
                            vmin=0.0, vmax=1.0, extent=extent, interpolation="nearest")
            elif value.shape[-1] == 1:
                axis.imshow(value[..., 0], cmap="RdBu_r", vmin=-3.0, vmax=3.0, extent=extent,
                            interpolation="nearest")
            else:
                image = np.clip(value[..., :3] / 6.0 + 0.5, 0.0, 1.0)
                axis.imshow(np.nan_to_num(image, nan=1.0), extent=extent, interpolation="nearest")
    for axis, name in zip(axes[0], names):
        axis.set_title(name, fontsize=7)
    figure.suptitle(f"normalizing: x -> z (blue -3 ... red +3); max |decode(encode(x)) - x| = "
                    f"{error:.1e}", fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return error


def loss_curves(history: dict, path):
    """Training (and validation) loss per epoch, in nats and bits per dimension.

    Args:
        history: ``History.history`` of a ``fit`` (``loss``, ``bits_per_dim`` and their
            ``val_`` twins where present).
        path: the PNG file to write.

    Examples:
        >>> import pathlib, tempfile
        >>> path = pathlib.Path(tempfile.mkdtemp()) / "loss.png"
        >>> loss_curves({"loss": [1.0, 0.5], "bits_per_dim": [1.4, 0.7]}, path)
        >>> path.exists()
        True
    """
    plt = _pyplot()
    figure, axes = plt.subplots(1, 2, figsize=(9, 3.5))
    for axis, key in zip(axes, ("loss", "bits_per_dim")):
        for prefix in ("", "val_"):
            if prefix + key in history:
                axis.plot(np.arange(1, len(history[prefix + key]) + 1), history[prefix + key],
                          label=prefix + key)
        axis.set_xlabel("epoch")
        axis.set_title("negative log-likelihood (nats)" if key == "loss" else "bits per dimension")
        axis.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)




# -- calibration of a posterior (tfp_flows.diagnostics) ------------------------------------


def _drawn(axes_count: int, axes, path, width: float = 3.6):
    """``(figure, axes)``: the caller's axes, or a new row of ``axes_count`` to save at ``path``."""
    if axes is not None:
        return None, list(np.atleast_1d(axes))
    plt = _pyplot()
    figure, new = plt.subplots(1, axes_count, figsize=(width * axes_count, 3.4), squeeze=False)
    return figure, list(new[0])


def _saved(figure, path):
    if figure is None:
        return
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    _pyplot().close(figure)


def sbc_ecdf(ranks, num_samples: int, path=None, axis=None, names=None, level: float = 0.95):
    """Simulation-based calibration: the ECDF of each parameter's ranks minus the uniform
    one, inside its ``level`` simultaneous band (grey; `tfp_flows.diagnostics.ecdf_band`).

    Talts et al. 2018 (arXiv:1804.06788); the band of Säilynoja et al. 2022
    (arXiv:2103.10522). Draws on ``axis`` if given, else writes ``path``.

    Args:
        ranks: ``[N, D]`` SBC ranks (`tfp_flows.diagnostics.sbc_ranks`).
        num_samples: ``L``, draws per simulation.
        path: the PNG file to write when ``axis`` is None.
        axis: a matplotlib axis to draw on, or None.
        names: a name per parameter, or None.
        level: the band's simultaneous coverage.

    Examples:
        >>> import pathlib, tempfile
        >>> path = pathlib.Path(tempfile.mkdtemp()) / "sbc.png"
        >>> ranks = np.random.default_rng(0).integers(0, 10, (50, 2))
        >>> sbc_ecdf(ranks, 9, path)
        >>> path.exists()
        True
    """
    from tfp_flows import diagnostics

    ranks = np.asarray(ranks).reshape(len(ranks), -1)
    figure, (axis,) = _drawn(1, axis, path)
    z, difference = diagnostics.ecdf_difference(ranks, num_samples)
    _, lower, upper = diagnostics.ecdf_band(len(ranks), num_samples, level)
    axis.fill_between(z, lower, upper, color="0.85", step="post",
                      label=f"{level:.0%} simultaneous band")
    names = names or [f"theta_{d + 1}" for d in range(ranks.shape[1])]
    for d in range(ranks.shape[1]):
        axis.step(z, difference[:, d], where="post", label=names[d])
    axis.axhline(0.0, color="k", lw=0.5)
    axis.set_xlabel("fractional rank")
    axis.set_ylabel("ECDF - uniform")
    axis.set_title(f"SBC: {len(ranks)} simulations, {num_samples} draws each", fontsize=9)
    axis.legend(fontsize=7)
    _saved(figure, path)


def coverage(hpd_ranks, num_samples: int, path=None, axis=None, level: float = 0.95):
    """Expected coverage of HPD regions against their credibility, the diagonal and its
    ``level`` simultaneous band (`tfp_flows.diagnostics.expected_coverage`). Below the
    diagonal: over-confident; above: too wide. Draws on ``axis`` if given, else writes
    ``path``.

    Args:
        hpd_ranks: ``[N]`` HPD ranks (`tfp_flows.diagnostics.hpd_ranks`).
        num_samples: ``L``, draws per simulation.
        path: the PNG file to write when ``axis`` is None.
        axis: a matplotlib axis to draw on, or None.
        level: the band's simultaneous coverage.

    Examples:
        >>> import pathlib, tempfile
        >>> path = pathlib.Path(tempfile.mkdtemp()) / "coverage.png"
        >>> coverage(np.random.default_rng(0).integers(0, 10, 50), 9, path)
        >>> path.exists()
        True
    """
    from tfp_flows import diagnostics

    figure, (axis,) = _drawn(1, axis, path)
    levels, covered = diagnostics.expected_coverage(hpd_ranks, num_samples)
    _, lower, upper = diagnostics.ecdf_band(len(np.ravel(hpd_ranks)), num_samples, level)
    axis.fill_between(levels, levels + lower, levels + upper, color="0.85", step="post",
                      label=f"{level:.0%} band if calibrated")
    axis.plot([0, 1], [0, 1], "k", lw=0.5)
    axis.step(levels, covered, where="post", color="C3", label="expected coverage")
    axis.set_xlabel("credibility level of the HPD region")
    axis.set_ylabel("fraction of truths inside")
    axis.set_title("expected coverage", fontsize=9)
    axis.legend(fontsize=7)
    _saved(figure, path)


def recovery(samples, theta, path=None, axes=None, names=None, level: float = 0.9):
    """Parameter recovery: posterior mean against the true value, one panel per parameter,
    with the central ``level`` interval as an error bar and the diagonal. Draws on
    ``axes`` (one per parameter) if given, else writes ``path``.

    Args:
        samples: ``[N, L, ...]`` posterior draws.
        theta: ``[N, ...]`` true parameters.
        path: the PNG file to write when ``axes`` is None.
        axes: one matplotlib axis per parameter, or None.
        names: a name per parameter, or None.
        level: the intervals' central probability.

    Examples:
        >>> import pathlib, tempfile
        >>> path = pathlib.Path(tempfile.mkdtemp()) / "recovery.png"
        >>> rng = np.random.default_rng(0)
        >>> recovery(rng.normal(size=(20, 30, 2)), rng.normal(size=(20, 2)), path)
        >>> path.exists()
        True
    """
    from tfp_flows import diagnostics

    theta = np.asarray(theta).reshape(len(theta), -1)
    mean, lower, upper = diagnostics.posterior_intervals(samples, level)
    figure, axes = _drawn(theta.shape[1], axes, path, width=3.2)
    names = names or [f"theta_{d + 1}" for d in range(theta.shape[1])]
    for d, axis in enumerate(axes):
        axis.errorbar(theta[:, d], mean[:, d], yerr=[mean[:, d] - lower[:, d],
                                                     upper[:, d] - mean[:, d]],
                      fmt="o", ms=2, lw=0.5, alpha=0.6)
        low, high = theta[:, d].min(), theta[:, d].max()
        axis.plot([low, high], [low, high], "k", lw=0.5)
        r2 = 1.0 - np.mean((mean[:, d] - theta[:, d]) ** 2) / np.var(theta[:, d])
        axis.set_title(f"{names[d]}: R^2 = {r2:.3f}", fontsize=9)
        axis.set_xlabel("true value")
        axis.set_ylabel(f"posterior mean, {level:.0%} interval")
    _saved(figure, path)


def calibration(result, theta, path, names=None, level: float = 0.95):
    """One row: `sbc_ecdf`, `coverage` and `recovery` of a
    `tfp_flows.diagnostics.Calibration` against the true ``theta``.

    Args:
        result: a `tfp_flows.diagnostics.Calibration`.
        theta: ``[N, ...]`` true parameters.
        path: the PNG file to write.
        names: a name per parameter, or None.
        level: the bands' simultaneous coverage.

    Examples:
        >>> import pathlib, tempfile
        >>> from tfp_flows.diagnostics import Calibration
        >>> rng = np.random.default_rng(0)
        >>> samples, theta = rng.normal(size=(20, 9, 1)), rng.normal(size=(20, 1))
        >>> result = Calibration(samples, rng.integers(0, 10, (20, 1)), rng.integers(0, 10, 20))
        >>> path = pathlib.Path(tempfile.mkdtemp()) / "calibration.png"
        >>> calibration(result, theta, path)
        >>> path.exists()
        True
    """
    theta = np.asarray(theta).reshape(len(theta), -1)
    figure, axes = _drawn(2 + theta.shape[1], None, path, width=3.4)
    sbc_ecdf(result.ranks, result.num_samples, axis=axes[0], names=names, level=level)
    coverage(result.hpd_ranks, result.num_samples, axis=axes[1], level=level)
    recovery(result.samples, theta, axes=axes[2:], names=names)
    _saved(figure, path)
