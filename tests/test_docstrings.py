"""Every example in the package's docstrings runs and prints what it shows (doctest).

The examples run from the package as it is imported, the installed copy included, so
``pip install .`` then ``pytest`` checks them as ``pytest --doctest-modules tfp_flows``
cannot (that collects the source folder and fails on "import file mismatch").
"""

import doctest
import importlib
import pkgutil

import pytest

import tfp_flows

FLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE
MODULES = sorted(name for _, name, _ in pkgutil.walk_packages(tfp_flows.__path__, "tfp_flows."))


def examples(name):
    """The docstrings with examples of the objects defined in module ``name``."""
    module = importlib.import_module(name)
    return [test for test in doctest.DocTestFinder().find(module, name) if test.examples]


WITH_EXAMPLES = [name for name in MODULES if examples(name)]


def test_the_finder_finds_the_examples():
    # Without this a finder that finds nothing would pass the test below.
    assert {"tfp_flows.metrics", "tfp_flows.models.flow", "tfp_flows.checks"} <= set(WITH_EXAMPLES)


@pytest.mark.parametrize("name", WITH_EXAMPLES)
def test_examples_run(name):
    runner = doctest.DocTestRunner(optionflags=FLAGS)
    report = []
    for test in examples(name):
        runner.run(test, out=report.append)
    assert runner.tries > 0
    assert runner.failures == 0, "".join(report)
