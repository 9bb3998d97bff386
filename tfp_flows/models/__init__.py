"""Flow models: the `Flow` keras.Model and the `RealNVP` and `Glow` builders."""

from tfp_flows.models.builders import Glow, RealNVP
from tfp_flows.models.flow import Flow

__all__ = ["Flow", "Glow", "RealNVP"]
