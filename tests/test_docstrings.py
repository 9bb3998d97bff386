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


# -- every public name is documented -----------------------------------------------------------

def _api():
    """``docs/hooks/api.py``: the public names the site's reference pages are made from."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "docs" / "hooks" / "api.py"
    spec = importlib.util.spec_from_file_location("tfp_flows_docs_api", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_public_name_has_args_returns_raises_and_an_example():
    # Args when it takes arguments, Returns when it returns a value, Raises when its own
    # body raises, and an example (which test_examples_run above runs).
    missing = _api().report()
    assert not missing, "public names whose docstrings lack sections:\n" + "\n".join(
        f"{name}: {', '.join(sections)}" for name, sections in missing.items())


def test_the_public_names_come_from_the_code():
    api = _api()
    modules = api.public_modules()
    assert modules[0] == "tfp_flows"
    assert {"tfp_flows.bijectors", "tfp_flows.layers", "tfp_flows.data",
            "tfp_flows.training.weights"} <= set(modules)
    assert not any(part.startswith("_") for name in modules for part in name.split("."))
    names = {f"{module}.{name}" for module, name, _ in api.documented_objects()}
    assert {"tfp_flows.Flow", "tfp_flows.layers.ActNorm", "tfp_flows.data.image_folder",
            "tfp_flows.cli.main"} <= names
    assert "tfp_flows.models.Flow" not in names  # documented once, where it appears first
    assert "tfp_flows.cli.cmd_train" not in names  # cli's __all__ is the command alone


def test_a_planted_gap_is_caught():
    api = _api()

    def undocumented(x, y):
        return x + y

    def documented(x):
        """Doubles ``x``.

        Args:
            x: a number.

        Returns:
            ``2 x``.

        Examples:
            >>> 1
            1
        """
        if x is None:
            raise ValueError("x")
        return 2 * x

    assert api.missing_sections(undocumented) == ["docstring"]
    assert api.missing_sections(documented) == ["Raises"]
