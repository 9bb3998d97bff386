"""The package's shape: no import cycle, anywhere (function-local imports included), and
the model class does not carry the training machinery."""

import ast
from pathlib import Path

import tfp_flows

ROOT = Path(tfp_flows.__file__).parent


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def is_module(name: str) -> bool:
    path = ROOT.parent.joinpath(*name.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def imports_of(path: Path) -> set:
    """Every tfp_flows module that ``path`` imports, at any depth of its code."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name.startswith("tfp_flows"))
        elif isinstance(node, ast.ImportFrom) and node.module and \
                node.module.startswith("tfp_flows"):
            for alias in node.names:  # a name may be a submodule
                child = f"{node.module}.{alias.name}"
                found.add(child if is_module(child) else node.module)
    return found


def import_graph() -> dict:
    graph = {}
    for path in ROOT.rglob("*.py"):
        name = module_name(path)
        # A package's __init__ re-exports its own children: that edge is not a cycle.
        graph[name] = {m for m in imports_of(path)
                       if not (path.name == "__init__.py" and m.startswith(name + "."))
                       and m != name}
    return graph


def find_cycle(graph):
    state, stack = {}, []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for child in sorted(graph.get(node, ())):
            if state.get(child) == "open":
                return stack[stack.index(child):] + [child]
            if child not in state:
                cycle = visit(child)
                if cycle:
                    return cycle
        state[node] = "done"
        stack.pop()
        return None

    for node in sorted(graph):
        if node not in state:
            cycle = visit(node)
            if cycle:
                return cycle
    return None


def test_no_import_cycle():
    graph = import_graph()
    assert "tfp_flows.training.engine" in graph and graph["tfp_flows.models.flow"]
    assert find_cycle(graph) is None, " -> ".join(find_cycle(graph))
    # The finder finds one when there is one.
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]


def test_training_lives_outside_the_model():
    flow_source = (ROOT / "models" / "flow.py").read_text()
    assert "._compile_config" not in flow_source and "__dict__" not in flow_source
    assert "threading" not in (ROOT / "_conv.py").read_text()
    for path in (ROOT / "training").glob("*.py"):
        # It takes the model as an argument and imports nothing of the models.
        assert not any(m.startswith("tfp_flows.models") for m in imports_of(path)), path
