"""Flow models: the `Flow` keras.Model and the `RealNVP`, `Glow`, `Jet`, `NSF` and `MAF` builders."""

from tfp_flows.models.builders import MAF, NSF, Glow, RealNVP
from tfp_flows.models.flow import Flow
from tfp_flows.models.jet import Jet

__all__ = ["MAF", "NSF", "Flow", "Glow", "Jet", "RealNVP"]
