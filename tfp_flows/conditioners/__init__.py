"""Conditioners: Keras models mapping the kept part ``x_a`` (and a context) to parameters.

Their last layer starts at zero, so every coupling starts as the identity
(or, for `AffineCoupling`, with ``s = t = 0``). They follow the global Keras
dtype policy, so under mixed precision they compute in float16 / bfloat16 while
the flow layers around them stay in float32.
"""

from tfp_flows.conditioners.causal_transformer import CausalTransformer
from tfp_flows.conditioners.convnet import ConvNet
from tfp_flows.conditioners.made import MADE
from tfp_flows.conditioners.mlp import MLP
from tfp_flows.conditioners.vit import ViT

__all__ = ["MADE", "CausalTransformer", "ConvNet", "MLP", "ViT"]
