"""`TarFlow`: a flow of Transformer autoregressive blocks over patch tokens."""

from __future__ import annotations

from tfp_flows import layers
from tfp_flows.bijectors.patchify import Patchify as _PatchifyMap
from tfp_flows.layers.dequantize import reject_unknown_kwargs
from tfp_flows.models.flow import Flow
from tfp_flows.models.jet import default_patch_size


def tarflow_layers(image_shape, num_blocks: int = 8, layers_per_block: int = 1,
                   patch_size: int | None = None, width: int = 64, num_heads: int = 4,
                   num_values: int | None = 256, noise_std: float = 0.0,
                   log_scale_bound: float = 3.0, mixing: bool | str = False,
                   seed: int | None = 0, dtype=None, dropout: float = 0.0) -> list:
    """The flow layers of `TarFlow` (data first); the arguments are those of `TarFlow`."""
    image_shape = tuple(int(n) for n in image_shape)
    patch_size = default_patch_size(image_shape) if patch_size is None else int(patch_size)
    _PatchifyMap(image_shape, patch_size)  # checks the shape and the patch size
    if int(num_blocks) < 1 or int(layers_per_block) < 1:
        raise ValueError(f"TarFlow: expected num_blocks >= 1 and layers_per_block >= 1; got "
                         f"num_blocks={num_blocks}, layers_per_block={layers_per_block}.")
    if mixing not in (False, True, "orthogonal", "lu"):
        raise ValueError(f"TarFlow: expected mixing in (False, True, 'orthogonal', 'lu'); "
                         f"got {mixing!r}.")
    kwargs = {} if dtype is None else {"dtype": dtype}
    flow_layers = [layers.Dequantize(num_values, seed=seed, **kwargs)] if num_values else []
    if noise_std:
        flow_layers.append(layers.GaussianNoise(
            noise_std, seed=None if seed is None else seed + 1, name="noise", **kwargs))
    flow_layers.append(layers.Patchify(patch_size, **kwargs))
    for index in range(int(num_blocks)):
        if mixing:
            mix = layers.TokenLULinear if mixing == "lu" else layers.OrthogonalMixing
            flow_layers.append(mix(seed=None if seed is None else seed + 2 + index,
                                   name=f"mixing_{index}", **kwargs))
        flow_layers.append(layers.TransformerAutoregressive(
            width, int(layers_per_block), num_heads, reverse=index % 2 == 1,
            log_scale_bound=log_scale_bound, dropout=dropout, name=f"block_{index}", **kwargs))
    flow_layers.append(layers.Unpatchify(image_shape, patch_size, **kwargs))
    return flow_layers


def TarFlow(image_shape, num_blocks: int = 8, layers_per_block: int = 1,  # noqa: N802
            patch_size: int | None = None, width: int = 64, num_heads: int = 4,
            num_values: int | None = 256, noise_std: float = 0.0, context_shape=None,
            num_classes=None, embedding_dim: int = 16, label_dropout: float = 0.0,
            log_scale_bound: float = 3.0, mixing: bool | str = False, dropout: float = 0.0,
            seed: int | None = 0, dtype=None, name: str = "tarflow",
            **kwargs) -> Flow:
    """TarFlow: Transformer autoregressive blocks over the patch tokens of an image.

    The image is cut into ``T = (H/p)(W/p)`` tokens of ``d = p*p*C`` values
    (`layers.Patchify`); each of ``num_blocks`` blocks
    (`layers.TransformerAutoregressive`) maps them by
    ``z_t = (x_t - mu(x_<t)) * exp(-alpha(x_<t))`` with a causal Transformer of
    ``layers_per_block`` layers, the blocks alternating the token order. A block maps
    the ``d`` values of a token independently of each other given the earlier tokens;
    with ``mixing`` a fixed random rotation of each token's values
    (`layers.OrthogonalMixing`, log-det 0, O(T d^2)) precedes every block, so that
    the values of one token are combined differently in each block. The latent has the
    image's shape (`layers.Unpatchify`).

    Density and training: one parallel pass per block,
    O(num_blocks layers_per_block (12 T width^2 + T^2 width)) per image. Sampling:
    ``T`` cached steps per block, the same total cost, sequential in ``T``.

    Defaults (8 blocks of one layer each, no rotations), one set for every image size:
    at about the cost of 4 blocks of two layers they train on 28x28 MNIST, where those
    barely learned, and on 8x8 digits they read 2.263 bits/dim against 2.274; the
    rotations cost both (MNIST 3.344 against 3.155, digits 2.359; README, TarFlow
    section, has the runs).

    Smaller patches learn more per step at more cost per step: on digits, patches of 1
    (64 tokens of one pixel) read 2.164 bits/dim after 1,000 steps against 2.263 for
    patches of 2, at 0.29x the images/s, and on MNIST patches of 2 train far faster per
    step than patches of 4. Train with a clipped optimizer, e.g.
    ``keras.optimizers.Adam(1e-3, clipnorm=1.0)``: without clipping, Adam's steps spike
    the loss of these Transformers (MNIST, patches of 4: 3.34 -> 5.41 training bits/dim
    around step 700; with clipping the run is monotone). On small image sets the
    Transformers overfit: ``dropout`` regularises them.

    The paper's recipe: ``noise_std > 0`` adds Gaussian noise while training
    (`layers.GaussianNoise`, after the dequantization), so the flow learns the density of
    noisy images; `tfp_flows.models.denoise` then removes it from samples with one step
    ``x + sigma^2 grad log p(x)`` of the flow's own score. ``log_prob`` and
    ``bits_per_dim`` stay the density of clean data (for ``num_values``, the
    uniform-dequantization bound); the density of the noisy data the flow was trained
    on is ``flow.distribution().log_prob(k + u + sigma_data eps)``
    (`tfp_flows.models.denoise.noisy_log_prob`).

    Zhai et al., "Normalizing Flows are Capable Generative Models", arXiv:2412.06329.

    Returns:
        An uncompiled `Flow`.

    Examples:
        >>> flow = TarFlow((8, 8, 1), num_blocks=2, layers_per_block=1, patch_size=2,
        ...                width=16, num_heads=2, num_values=17)
        >>> flow.latent_shape
        (8, 8, 1)

    Args:
        image_shape: ``(H, W, C)``; ``H`` and ``W`` divisible by ``patch_size``.
        num_blocks: number of autoregressive blocks.
        layers_per_block: Transformer layers in each block's conditioner.
        patch_size: side ``p`` of the square patches (default: `jet.default_patch_size`).
        width, num_heads: of each `conditioners.CausalTransformer` (MLP ratio 4).
        num_values: discrete values per pixel (``2 ** n_bits``; 17 for 8x8 digits); None
            for continuous data.
        noise_std: standard deviation of the training noise, in the units of the
            dequantized image ``v = (k + u) / num_values - 0.5`` (of ``x`` for continuous
            data); 0 (default) trains without it. The paper's 0.05 on images in
            ``[-1, 1]`` is 0.025 here.
        context_shape / num_classes / embedding_dim: see `Flow`; the context vector (or
            label embedding) is added to every position of every block's Transformer.
        label_dropout: with ``num_classes``, the rate at which training labels are
            replaced by a learned null label, so that ``flow.sample(n, label,
            guidance=w)`` can apply classifier-free guidance (the paper trains with 0.1).
        log_scale_bound: ``c`` of each block's log-scale ``c tanh(r / c)``.
        mixing: before each block, a map of each token's values: False (none), True or
            ``"orthogonal"`` (a fixed random rotation, `layers.OrthogonalMixing`), or
            ``"lu"`` (a learned LU-form matrix, `layers.TokenLULinear`, log-det
            ``T sum(log_scale)``).
        dropout: rate of each Transformer's dropout while training (0: none).
        seed: seed of the dequantization, the rotations and the training noise.
        dtype: dtype of the flow layers and Transformers (default: the Keras policy).
    """
    reject_unknown_kwargs("TarFlow", kwargs)
    flow_layers = tarflow_layers(image_shape, num_blocks, layers_per_block, patch_size, width,
                                 num_heads, num_values, noise_std, log_scale_bound, mixing, seed,
                                 dtype, dropout)
    return Flow(flow_layers, tuple(int(n) for n in image_shape), context_shape=context_shape,
                num_classes=num_classes, embedding_dim=embedding_dim,
                label_dropout=label_dropout, name=name)
