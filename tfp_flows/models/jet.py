"""`Jet`: couplings with Vision-Transformer conditioners on patch tokens, nothing else."""

from __future__ import annotations

from tfp_flows import layers
from tfp_flows.bijectors import HalfSplit, TokenCheckerboard, TokenStripes
from tfp_flows.bijectors.patchify import Patchify as _PatchifyMap
from tfp_flows.conditioners import ViT
from tfp_flows.layers.dequantize import reject_unknown_kwargs
from tfp_flows.models.builders import COUPLINGS
from tfp_flows.models.flow import Flow

SPATIAL_PATTERNS = ("checkerboard", "rows", "columns")


def _spatial_partition(pattern: str, grid, parity: int):
    if pattern == "checkerboard":
        return TokenCheckerboard(grid, parity)
    return TokenStripes(grid, axis=0 if pattern == "rows" else 1, parity=parity)


def default_patch_size(image_shape) -> int:
    """The largest of 4, 2, 1 that divides the sides and leaves at least 16 tokens
    (8x8 digits: 2, giving 16 tokens; 32x32 images: 4, giving 64)."""
    height, width = int(image_shape[0]), int(image_shape[1])
    for size in (4, 2):
        if height % size == 0 and width % size == 0 and (height // size) * (width // size) >= 16:
            return size
    return 1


def jet_layers(image_shape, num_couplings: int = 8, patch_size: int = 2, width: int = 64,
               depth: int = 2, num_heads: int = 4, num_values: int | None = 256,
               coupling: str = "affine", spatial_every: int = 3,
               spatial_patterns=("checkerboard",), context_as_token: bool = False,
               seed: int | None = 0, dtype=None) -> list:
    """The flow layers of `Jet` (data first); the arguments are those of `Jet`."""
    if coupling not in COUPLINGS:
        raise ValueError(f"Jet: expected coupling in {sorted(COUPLINGS)}; got {coupling!r}.")
    image_shape = tuple(int(n) for n in image_shape)
    patchify = _PatchifyMap(image_shape, patch_size)  # checks the shape and patch size
    if int(num_couplings) < 1 or int(spatial_every) < 0:
        raise ValueError(f"Jet: expected num_couplings >= 1 and spatial_every >= 0; got "
                         f"num_couplings={num_couplings}, spatial_every={spatial_every}.")
    patterns = tuple(spatial_patterns)
    if spatial_every and (not patterns or not set(patterns) <= set(SPATIAL_PATTERNS)):
        raise ValueError(f"Jet: expected spatial_patterns from {SPATIAL_PATTERNS}; "
                         f"got {patterns}.")
    coupling_class = COUPLINGS[coupling]
    tokens, size = patchify.token_shape
    if size < 2:
        raise ValueError(f"Jet: expected tokens of at least 2 values to split; got "
                         f"{size} (patch_size={patch_size}, {image_shape[-1]} channel(s)).")
    kwargs = {} if dtype is None else {"dtype": dtype}

    def coupling_layer(index, partition, size_b):
        # How many parameters per value the coupling wants (2 for affine, more for a
        # spline): asked of the layer class, so every coupling of the registry works.
        per_value = coupling_class(partition, name="probe", **kwargs).num_params()
        conditioner = ViT(per_value * size_b, width, depth, num_heads,
                          context_as_token=context_as_token, **kwargs)
        return coupling_class(partition, conditioner=conditioner, name=f"coupling_{index}",
                              **kwargs)

    flow_layers = [layers.Dequantize(num_values, seed=seed, **kwargs)] if num_values else []
    flow_layers.append(layers.Patchify(patch_size, **kwargs))
    spatial = 0
    for index in range(int(num_couplings)):
        if spatial_every and index % spatial_every == spatial_every - 1:
            pattern = patterns[spatial % len(patterns)]
            parity = (spatial // len(patterns)) % 2
            flow_layers.append(coupling_layer(
                index, _spatial_partition(pattern, patchify.grid, parity), size))
            spatial += 1
        else:
            flow_layers.append(layers.OrthogonalMixing(
                seed=None if seed is None else seed + index, name=f"mixing_{index}", **kwargs))
            flow_layers.append(coupling_layer(index, HalfSplit(), HalfSplit().sizes(size)[1]))
    flow_layers.append(layers.Unpatchify(image_shape, patch_size, **kwargs))
    return flow_layers


def Jet(image_shape, num_couplings: int = 8, patch_size: int = 2, width: int = 64,  # noqa: N802
        depth: int = 2, num_heads: int = 4, num_values: int | None = 256, context_shape=None,
        num_classes=None, embedding_dim: int = 16, coupling: str = "affine",
        spatial_every: int = 3, spatial_patterns=("checkerboard",),
        context_as_token: bool = False, standardize: bool = False,
        standardize_context: bool = True, context_encoder=None,
        seed: int | None = 0,
        dtype=None, name: str = "jet", **kwargs) -> Flow:
    """Jet: a flow of couplings whose conditioners are Vision Transformers.

    The image is cut into ``(H/p)(W/p)`` tokens of ``p*p*C`` values (`layers.Patchify`).
    Each coupling transforms half of them, conditioned by a `conditioners.ViT` of
    the other half, split either

    - along the token dimensions: a fixed, seeded `layers.OrthogonalMixing` of the
      ``p*p*C`` values, then `bijectors.HalfSplit`; or
    - across the set of tokens (every ``spatial_every``-th coupling): a
      `bijectors.TokenCheckerboard` or `bijectors.TokenStripes` pattern, the patterns
      of ``spatial_patterns`` in turn, their parity alternating.

    No multiscale, no 1x1 convolutions, no ActNorm; the latent has the image's shape
    (`layers.Unpatchify`). Discrete data is dequantized first, as in `Glow`.

    Kolesnikov et al., "Jet: A Modern Transformer-Based Normalizing Flow",
    arXiv:2412.15129 (its couplings go channels, channels, spatial: ``spatial_every=3``,
    its spatial splits checkerboard and inverted checkerboard).

    Returns:
        An uncompiled `Flow`.

    Raises:
        ValueError: an unknown coupling or spatial pattern, sizes below 1, or tokens
            too small to split.

    Examples:
        >>> flow = Jet((8, 8, 1), num_couplings=2, width=16, depth=1, num_heads=2, num_values=17)
        >>> flow.latent_shape
        (8, 8, 1)

    Args:
        image_shape: ``(H, W, C)``; ``H`` and ``W`` divisible by ``patch_size``.
        num_couplings: number of couplings.
        patch_size: side ``p`` of the square patches.
        width, depth, num_heads: of each `conditioners.ViT` (MLP ratio 4).
        num_values: number of discrete values per pixel (``2 ** n_bits``; 17 for 8x8
            digits); None for continuous data. (Formerly ``levels``: a TypeError now.)
        context_shape / num_classes / embedding_dim / context_encoder: see `Flow`; the
            context vector (or label embedding, or encoder's output) is added to every
            token of every ViT.
        coupling: ``"affine"``, ``"additive"``, ``"prelu"`` or any other key of
            ``models.builders.COUPLINGS``.
        spatial_every: every how many couplings one splits the set of tokens (0: never).
        spatial_patterns: names from ``("checkerboard", "rows", "columns")``.
        context_as_token: give the context to the ViTs as an extra token.
        standardize / standardize_context: as in `Glow`.
        seed: seed of the orthogonal mixings and the dequantization noise.
        dtype: dtype of the flow layers and ViTs (default: the Keras policy).
    """
    reject_unknown_kwargs("Jet", kwargs)
    flow_layers = jet_layers(image_shape, num_couplings, patch_size, width, depth, num_heads,
                             num_values, coupling, spatial_every, spatial_patterns,
                             context_as_token, seed, dtype)
    if standardize and not num_values:
        flow_layers = [layers.Standardize(**({} if dtype is None else {"dtype": dtype}))] + flow_layers
    return Flow(flow_layers, tuple(int(n) for n in image_shape), context_shape=context_shape,
                num_classes=num_classes, embedding_dim=embedding_dim,
                standardize_context=standardize_context,
                context_encoder=context_encoder, name=name)
