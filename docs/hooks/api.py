"""The package's public names, read from the code: what the API reference documents.

A public module is ``tfp_flows`` itself, every module or package directly under it whose
name has no leading underscore, and every module that a public module names in its
``__all__``. Its public names are its ``__all__``; a module without one exposes the
functions and classes defined in it whose names have no leading underscore. The site's
reference pages (``gen_api.py``) and the docstring test (``tests/test_docstrings.py``)
both read this list, so a new public name gets a page and is checked without anyone
editing a list. Standard library and ``tfp_flows`` only: the tests import it too.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import pkgutil
import textwrap
import types

ROOT = "tfp_flows"


def public_modules() -> list[str]:
    """Names of the public modules, the package first, then sorted."""
    package = importlib.import_module(ROOT)
    names = {ROOT} | {f"{ROOT}.{name}" for _, name, _ in pkgutil.iter_modules(package.__path__)
                      if not name.startswith("_")}
    todo = sorted(names)
    while todo:
        module = importlib.import_module(todo.pop())
        for name in getattr(module, "__all__", ()):
            value = getattr(module, name)
            if isinstance(value, types.ModuleType) and value.__name__ not in names:
                names.add(value.__name__)
                todo.append(value.__name__)
    return [ROOT] + sorted(names - {ROOT})


def public_names(module_name: str) -> list[str]:
    """The public names of a module: its ``__all__``, or its own public functions and classes."""
    module = importlib.import_module(module_name)
    if hasattr(module, "__all__"):
        return list(module.__all__)
    return [name for name, value in vars(module).items()
            if not name.startswith("_") and (inspect.isclass(value) or inspect.isfunction(value))
            and value.__module__ == module_name]


def documented_objects():
    """``(module, name, object)`` for each public name that is not a module, first place only.

    An object that several public modules export (``tfp_flows.Flow`` is
    ``tfp_flows.models.Flow``) is documented where it appears first in `public_modules`.
    """
    seen = set()
    for module_name in public_modules():
        module = importlib.import_module(module_name)
        for name in public_names(module_name):
            value = getattr(module, name)
            if isinstance(value, types.ModuleType):
                continue
            key = id(value) if inspect.isclass(value) or inspect.isfunction(value) \
                else (module_name, name)
            if key in seen:
                continue
            seen.add(key)
            yield module_name, name, value


def first_places() -> dict[int, str]:
    """``id(object) -> "module.name"`` where each public class or function is documented."""
    return {id(value): f"{module}.{name}" for module, name, value in documented_objects()
            if inspect.isclass(value) or inspect.isfunction(value)}


def _body(value):
    """The function whose arguments, returns and raises a docstring describes."""
    if inspect.isclass(value):
        return value.__init__ if "__init__" in vars(value) else None
    return value


def _source_tree(function):
    try:
        return ast.parse(textwrap.dedent(inspect.getsource(function)))
    except (OSError, TypeError, SyntaxError):
        return None


def _own_nodes(tree):
    """The nodes of a function's own body, not of the functions and classes inside it."""
    top = tree.body[0]
    todo = list(ast.iter_child_nodes(top))
    while todo:
        node = todo.pop()
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef | ast.Lambda):
            continue
        yield node
        todo.extend(ast.iter_child_nodes(node))


def missing_sections(value) -> list[str]:
    """The docstring sections a public class or function lacks.

    ``Args:`` when it takes arguments (a class: its ``__init__``); ``Returns:`` (or
    ``Yields:``) when a function returns a value; ``Raises:`` when its own body raises;
    an example (``>>>``, under an ``Examples:`` header) always. A docstring that is missing altogether is
    ``["docstring"]``.
    """
    doc = inspect.getdoc(value) if (inspect.isclass(value) or inspect.isfunction(value)) \
        else None
    if inspect.isclass(value) and doc and value.__doc__ is None:
        doc = None  # inherited from a base class, not its own
    if not doc:
        return ["docstring"]
    missing = []
    body = _body(value)
    if body is not None:
        parameters = [p for p in inspect.signature(body).parameters.values()
                      if p.name not in ("self", "cls")
                      and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
        if parameters and "Args:" not in doc:
            missing.append("Args")
        tree = _source_tree(body)
        if tree is not None:
            nodes = list(_own_nodes(tree))
            returns = any(isinstance(n, ast.Return) and n.value is not None
                          and not (isinstance(n.value, ast.Constant) and n.value.value is None)
                          for n in nodes)
            yields = any(isinstance(n, ast.Yield | ast.YieldFrom) for n in nodes)
            if inspect.isfunction(value) and returns and "Returns:" not in doc \
                    and "Yields:" not in doc:
                missing.append("Returns")
            if inspect.isfunction(value) and yields and not returns and "Yields:" not in doc:
                missing.append("Yields")
            if any(isinstance(n, ast.Raise) and n.exc is not None for n in nodes) \
                    and "Raises:" not in doc:
                missing.append("Raises")
    if ">>>" not in doc:
        missing.append("example")
    elif "Examples:" not in doc:  # "Example:" is an admonition to griffe, not code
        missing.append("Examples: header")
    return missing


def report() -> dict[str, list[str]]:
    """``"module.name" -> missing sections`` for every public class and function that lacks one."""
    found = {}
    for module, name, value in documented_objects():
        if inspect.isclass(value) or inspect.isfunction(value):
            missing = missing_sections(value)
            if missing:
                found[f"{module}.{name}"] = missing
    return found
