"""Keras 3 layers that own a flow's weights and hand out its bijectors.

Every layer maps data to latents in ``call`` (``(z, log|det dz/dx|)``) and gives
``bijector(context)``, whose ``forward`` samples and ``inverse`` normalizes.
"""

from tfp_flows.layers.actnorm import ActNorm
from tfp_flows.layers.base import FlowLayer, LayerChain
from tfp_flows.layers.coupling import (
    AdditiveCoupling,
    AffineCoupling,
    PReLUCoupling,
    SplineCoupling,
)
from tfp_flows.layers.dequantize import Dequantize
from tfp_flows.layers.factor_out import FactorOut
from tfp_flows.layers.fixed import FixedBijector
from tfp_flows.layers.gaussian_noise import GaussianNoise
from tfp_flows.layers.linear import DiagonalLinear, FullLinear, TriangularLinear
from tfp_flows.layers.lu_linear import Invertible1x1Conv, LULinear, TokenLULinear
from tfp_flows.layers.masked_autoregressive import MaskedAutoregressive
from tfp_flows.layers.orthogonal_mixing import OrthogonalMixing
from tfp_flows.layers.patchify import Patchify, Unpatchify
from tfp_flows.layers.squeeze import Permute, Squeeze, Unsqueeze
from tfp_flows.layers.standardize import Standardize
from tfp_flows.layers.transformer_autoregressive import TransformerAutoregressive

__all__ = [
    "ActNorm",
    "AdditiveCoupling",
    "AffineCoupling",
    "Dequantize",
    "DiagonalLinear",
    "FactorOut",
    "FixedBijector",
    "FlowLayer",
    "FullLinear",
    "GaussianNoise",
    "Invertible1x1Conv",
    "LULinear",
    "LayerChain",
    "MaskedAutoregressive",
    "OrthogonalMixing",
    "PReLUCoupling",
    "Patchify",
    "Permute",
    "SplineCoupling",
    "Squeeze",
    "Standardize",
    "TokenLULinear",
    "TransformerAutoregressive",
    "TriangularLinear",
    "Unpatchify",
    "Unsqueeze",
]
