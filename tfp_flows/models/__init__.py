"""Flow models: the `Flow` keras.Model and the `RealNVP`, `Glow`, `Jet`, `NSF` and `MAF` builders."""

from tfp_flows.models.builders import MAF, NSF, Glow, RealNVP
from tfp_flows.models.flow import Flow
from tfp_flows.models.jet import Jet

__all__ = ["IMAGE_BUILDERS", "MAF", "NSF", "VECTOR_BUILDERS", "Flow", "Glow", "Jet", "RealNVP"]

VECTOR_BUILDERS = {"realnvp": RealNVP, "nsf": NSF, "maf": MAF}
"""The builders of flows for vectors ``(batch, d)``, by name (the CLI's ``--model``)."""

IMAGE_BUILDERS = {"glow": Glow, "jet": Jet}
"""The builders of flows for images ``(batch, H, W, C)``, by name (the CLI's ``--model``)."""
