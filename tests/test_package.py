"""The package as installed: a quiet import, the console script, the public names."""

import subprocess
import sys

import tfp_flows


def test_import_is_quiet():
    result = subprocess.run([sys.executable, "-c", "import tfp_flows"], capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0
    assert result.stdout == "" and result.stderr == "", result.stderr


def test_public_names():
    for name in tfp_flows.__all__:
        assert getattr(tfp_flows, name) is not None
    for module in (tfp_flows.bijectors, tfp_flows.layers, tfp_flows.conditioners,
                   tfp_flows.models):
        for name in module.__all__:
            assert getattr(module, name) is not None, (module.__name__, name)
