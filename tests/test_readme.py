"""The README's Python example runs as written."""

import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_example_runs(tmp_path, monkeypatch):
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)
    example = next(block for block in blocks if "flow.export" in block)
    monkeypatch.chdir(tmp_path)
    namespace = {}
    exec(compile(example, str(README), "exec"), namespace)  # noqa: S102
    assert (tmp_path / "moons.keras").exists()
    assert (tmp_path / "served" / "moons" / "1" / "saved_model.pb").exists()
    assert namespace["samples"].shape == (1000, 2)
    assert namespace["log_p"].shape == (1024,)
