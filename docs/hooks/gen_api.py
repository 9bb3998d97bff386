"""Writes the API reference: one page per public module, a section per public name.

Run by the ``gen-files`` plugin at every build. The names come from the code (``api.py``:
``__all__``, or a module's own public functions and classes), so a new public name gets
its section, and the build fails (strict mode) on a public class or function without a
docstring: mkdocstrings would otherwise leave it out without a word.
"""

import importlib.util
import inspect
import logging
import sys
import types
from pathlib import Path

import mkdocs_gen_files

log = logging.getLogger("mkdocs.plugins.tfp_flows_api")


def _load_api():
    path = Path(__file__).with_name("api.py")
    spec = importlib.util.spec_from_file_location("tfp_flows_docs_api", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


api = _load_api()
first = api.first_places()
nav = mkdocs_gen_files.Nav()

for module_name in api.public_modules():
    module = importlib.import_module(module_name)
    page = Path("reference", f"{module_name}.md")
    lines = [f"# `{module_name}`", "", f"::: {module_name}",
             "    options:", "      members: false", "      show_root_heading: false", ""]
    others = []
    for name in api.public_names(module_name):
        value = getattr(module, name)
        if isinstance(value, types.ModuleType):
            others.append(f"- [`{name}`]({value.__name__}.md): a module")
            continue
        here = f"{module_name}.{name}"
        home = first.get(id(value), here) if inspect.isclass(value) or inspect.isfunction(value) \
            else here
        if home != here:
            others.append(f"- `{name}`: documented as [`{home}`][{home}]")
            continue
        lines += [f"::: {here}", ""]
    if others:
        lines += ["## Also here", "", *others, ""]
    with mkdocs_gen_files.open(page, "w") as handle:
        handle.write("\n".join(lines))
    mkdocs_gen_files.set_edit_path(page, Path("hooks", "gen_api.py"))
    nav[module_name] = page.relative_to("reference").as_posix()

with mkdocs_gen_files.open("reference/SUMMARY.md", "w") as handle:
    handle.writelines(nav.build_literate_nav())

for place, missing in api.report().items():
    if "docstring" in missing:
        log.warning("%s is public (api.py) but has no docstring", place)
