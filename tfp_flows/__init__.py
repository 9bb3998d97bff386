"""Normalizing flows for Keras 3 and TensorFlow Probability.

A flow is an invertible map between data ``x`` and a latent ``z`` with a simple
base density: ``log p(x) = log p_z(f(x)) + log|det df/dx|``.

Direction, everywhere in this package (TFP's convention): a bijector's
``forward`` is the sampling direction ``z -> x`` and its ``inverse`` the
normalizing direction ``x -> z`` that training evaluates; ``Flow.encode`` is the
inverse and ``Flow.decode`` the forward.
"""

from tfp_flows import (
    _quiet,  # noqa: F401  (first: imports TensorFlow without its start-up chatter)
    bijectors,
    conditioners,
    config,
    data,
    encoders,
    export,
    io,
    layers,
    metrics,
)
from tfp_flows.callbacks import StopOnNonFiniteLoss
from tfp_flows.io import load_flow
from tfp_flows.models import MAF, NSF, Flow, Glow, Jet, RealNVP, TarFlow

__version__ = "0.1.0"

__all__ = [
    "MAF",
    "NSF",
    "Flow",
    "Glow",
    "Jet",
    "RealNVP",
    "StopOnNonFiniteLoss",
    "TarFlow",
    "bijectors",
    "conditioners",
    "config",
    "data",
    "encoders",
    "export",
    "io",
    "layers",
    "load_flow",
    "metrics",
]
