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
    """Heat map of the learned density of a 2-D flow with the data (and samples) over it."""
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


def image_grid(images, path, levels: int | None = None, columns: int = 8, titles=None,
               row_labels=None):
    """A grid of ``[N, H, W, C]`` images scaled from ``[0, levels)`` (or their own range)."""
    plt = _pyplot()
    images = np.asarray(images, np.float32)
    top = float(levels) if levels else max(float(images.max()), 1e-6)
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
    """Rows of samples at several temperatures (Glow's reduced-temperature sampling)."""
    images = [flow.sample(per_row, context=context, seed=seed, temperature=t).numpy()
              for t in temperatures]
    image_grid(np.concatenate(images), path, _levels(flow), columns=per_row,
               row_labels=[f"T={t:g}" for t in temperatures])


def interpolation(flow, first, second, path, steps: int = 8):
    """Decodes the straight line between the latents of two images."""
    z = flow.encode(np.stack([first, second])).numpy()
    weights = np.linspace(0.0, 1.0, steps)[:, None, None, None]
    images = flow.decode((1 - weights) * z[:1] + weights * z[1:]).numpy()
    image_grid(images, path, _levels(flow), columns=steps)


def loss_curves(history: dict, path):
    """Training (and validation) loss per epoch, in nats and bits per dimension."""
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


def _levels(flow):
    return flow.flow_layers[0].levels if flow.discrete else None
