"""Pure TFP bijectors: parameters are tensors or callables; they own no variables.

``forward`` samples (z -> x); ``inverse`` normalizes (x -> z) and is the cheap
direction that training evaluates.
"""

from tfp_flows.bijectors._base import FlowBijector, inverse_and_log_det
from tfp_flows.bijectors._coupling import Coupling
from tfp_flows.bijectors._linear import Linear
from tfp_flows.bijectors._lu import random_rotation_lu, reversal_lu
from tfp_flows.bijectors._spline import check_spline_args, num_spline_params
from tfp_flows.bijectors.actnorm import ActNorm
from tfp_flows.bijectors.additive_coupling import AdditiveCoupling
from tfp_flows.bijectors.affine_coupling import AffineCoupling
from tfp_flows.bijectors.diagonal_linear import DiagonalLinear
from tfp_flows.bijectors.factor_out import FactorOut
from tfp_flows.bijectors.full_linear import FullLinear
from tfp_flows.bijectors.invertible_1x1_conv import Invertible1x1Conv, TokenLULinear
from tfp_flows.bijectors.lu_linear import LULinear
from tfp_flows.bijectors.masked_autoregressive import (
    AffineTransform,
    MaskedAutoregressive,
    SplineTransform,
)
from tfp_flows.bijectors.orthogonal_mixing import OrthogonalMixing
from tfp_flows.bijectors.partitions import Checkerboard, HalfSplit
from tfp_flows.bijectors.patchify import Patchify
from tfp_flows.bijectors.prelu_coupling import PReLUCoupling
from tfp_flows.bijectors.spline_coupling import SplineCoupling
from tfp_flows.bijectors.squeeze import Squeeze
from tfp_flows.bijectors.token_partitions import TokenCheckerboard, TokenStripes
from tfp_flows.bijectors.transformer_autoregressive import TransformerAutoregressive
from tfp_flows.bijectors.triangular_linear import TriangularLinear

__all__ = [
    "ActNorm",
    "AdditiveCoupling",
    "AffineCoupling",
    "AffineTransform",
    "Checkerboard",
    "Coupling",
    "DiagonalLinear",
    "FactorOut",
    "FlowBijector",
    "FullLinear",
    "HalfSplit",
    "Invertible1x1Conv",
    "LULinear",
    "Linear",
    "MaskedAutoregressive",
    "OrthogonalMixing",
    "PReLUCoupling",
    "Patchify",
    "SplineCoupling",
    "SplineTransform",
    "Squeeze",
    "TokenCheckerboard",
    "TokenLULinear",
    "TokenStripes",
    "TransformerAutoregressive",
    "TriangularLinear",
    "check_spline_args",
    "inverse_and_log_det",
    "num_spline_params",
    "random_rotation_lu",
    "reversal_lu",
]
