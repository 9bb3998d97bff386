"""Flow models: the `Flow` keras.Model and the builders (`RealNVP`, `Glow`, `Jet`, `TarFlow`,
`NSF`, `MAF`)."""

from tfp_flows.models.builders import MAF, NSF, Glow, RealNVP
from tfp_flows.models.flow import Flow
from tfp_flows.models.jet import Jet
from tfp_flows.models.tarflow import TarFlow

__all__ = ["IMAGE_BUILDERS", "MAF", "NSF", "VECTOR_BUILDERS", "Flow", "Glow", "Jet", "RealNVP",
           "TarFlow"]

VECTOR_BUILDERS = {"realnvp": RealNVP, "nsf": NSF, "maf": MAF}
"""The builders of flows for vectors ``(batch, d)``, by name (the CLI's ``--model``)."""

IMAGE_BUILDERS = {"glow": Glow, "jet": Jet, "tarflow": TarFlow}
"""The builders of flows for images ``(batch, H, W, C)``, by name (the CLI's ``--model``)."""
