"""Griffe extension of the API reference: package layout, roles, export tables, tidy classes.

1. ``probsnn.models`` and ``probsnn.inference`` live in the repository's ``models/`` and
   ``inference/`` folders (a package-dir mapping in pyproject.toml), which static analysis does
   not follow; this extension loads them as submodules of ``probsnn``.
2. The docstrings name objects with Sphinx roles (``:func:`fit```, ``:mod:`.likelihood```,
   ``:class:`~.infomax.InformationCriterion```). A role becomes a cross-reference to the
   object's entry in the API reference when the name resolves to a documented public object,
   and inline code otherwise.
3. Google-style argument lists group names that share a description (``spec, params: ...``);
   each name gets its own entry, so every one is checked against the signature.
4. A package page shows the package's docstring only (``members: false``); its re-exports
   (``__all__``) are appended as a table linking each name to the entry where it is defined.
5. A class's entries that would only repeat its docstring's tables (a NamedTuple's fields) or say
   nothing (undocumented ``__eq__``, ``__hash__``) are left out.

A public name without an entry (exported by a package page, or re-exported from a private module)
is a warning, so ``mkdocs build --strict`` fails until a page renders it.

Which modules are documented is read from the ``::: path`` lines of the pages under docs/api/.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

import griffe

MAPPED = ("models", "inference")
ROLE = re.compile(r":(?:func|class|mod|meth|attr|data|obj|exc):`(?P<tilde>~?)(?P<target>[^`<>]+)`")
API_DIR = Path(__file__).resolve().parent.parent / "api"
BLOCK = re.compile(r"^:::\s+(?P<path>\S+)\n(?P<options>(?:[ \t]+\S.*\n?)*)", re.MULTILINE)
MEMBERS = re.compile(r"^\s+members:\s*(?P<value>.*)$", re.MULTILINE)
LOG = logging.getLogger("mkdocs.plugins.probsnn")  # a warning fails `mkdocs build --strict`
ALIAS_ERRORS = (griffe.AliasResolutionError, griffe.CyclicAliasError)


def documented_modules() -> dict[str, set[str] | None]:
    """Documented module path -> the members rendered on its page (None: every public one)."""
    found: dict[str, set[str] | None] = {}
    for page in sorted(API_DIR.glob("*.md")):
        for block in BLOCK.finditer(page.read_text(encoding="utf-8")):
            members = MEMBERS.search(block["options"])
            if members is None:
                found[block["path"]] = None
            elif members["value"].strip() == "false":
                found[block["path"]] = set()
            else:
                found[block["path"]] = set(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", members["value"]))
    return found


class ProbsnnLayout(griffe.Extension):
    """Attach the mapped packages, turn Sphinx roles into cross-references, table exports."""

    def on_package(self, *, pkg: griffe.Module, loader: griffe.GriffeLoader, **kwargs: Any) -> None:
        if pkg.name != "probsnn":
            return
        root = Path(pkg.filepath).parent.parent
        for name in MAPPED:
            init = root / name / "__init__.py"
            if name in pkg.members or not init.exists():
                continue
            sub = loader._load_module(name, init, parent=pkg)
            pkg.set_member(name, sub)
            loader.expand_exports(sub)
            loader.expand_wildcards(sub, external=False)
        self.root = pkg
        self.documented = documented_modules()
        self._drop_listed_attributes(pkg, set())
        self._convert(pkg, set())
        for path, members in self.documented.items():
            module = self._get(path)
            if members == set() and module is not None and module.exports:
                self._export_table(module)
            elif members is None and module is not None and module.exports is None:
                self._check_reexports(module)

    # -- lookup ------------------------------------------------------------------------------

    def _get(self, path: str) -> Any | None:
        """The object at ``path`` (``probsnn...``), following aliases; None if absent."""
        parts = path.split(".")
        if parts[0] != self.root.name:
            return None
        obj: Any = self.root
        for part in parts[1:]:
            obj = self._members(obj).get(part)
            if obj is None:
                return None
        return obj

    def _members(self, obj: Any) -> dict:
        if obj.is_alias:
            target = self._get(obj.target_path)
            return {} if target is None or target is obj else self._members(target)
        return obj.members

    def canonical(self, path: str) -> str | None:
        """The path where the object at ``path`` is defined (aliases followed), or None."""
        parts = path.split(".")
        if parts[0] != self.root.name:
            return None
        obj: Any = self.root
        for depth in range(8):
            for i, part in enumerate(parts[1:], start=1):
                member = self._members(obj).get(part)
                if member is None:
                    return None
                if member.is_alias:
                    parts = [*member.target_path.split("."), *parts[i + 1 :]]
                    obj = self.root
                    break
                obj = member
            else:
                return ".".join(parts)
            if depth == 7 or parts[0] != self.root.name:
                return None
        return None

    def rendered(self, path: str) -> bool:
        """Whether the object defined at ``path`` has an entry in the API reference."""
        parts = path.split(".")
        for i in range(len(parts), 0, -1):
            prefix = ".".join(parts[:i])
            if prefix not in self.documented:
                continue
            rest = parts[i:]
            if not rest:
                return True
            shown = self.documented[prefix]
            if shown is not None and rest[0] not in shown:
                return False
            obj = self._get(prefix)
            for part in rest:
                member = obj.members.get(part)
                if member is None or member.is_alias or not _public(member):
                    return False
                obj = member
            return True
        return False

    # -- roles -------------------------------------------------------------------------------

    def _convert(self, obj: Any, seen: set[str]) -> None:
        if obj.is_alias or obj.path in seen:
            return
        seen.add(obj.path)
        if obj.docstring is not None:
            text = split_grouped_args(obj.docstring.value)
            if ":`" in text:
                text = ROLE.sub(lambda m: self._role(obj, m), text)
            obj.docstring.value = text
        for member in list(obj.members.values()):
            if not member.is_alias:
                self._convert(member, seen)

    def _candidates(self, obj: Any, target: str) -> list[str]:
        scopes: list[str] = []
        scope = obj if obj.is_module or obj.is_class else obj.parent
        while scope is not None:
            scopes.append(scope.path)
            scope = scope.parent
        rest = target.lstrip(".")
        if target.startswith("."):
            module = obj
            while not module.is_module:
                module = module.parent
            up = len(target) - len(rest) - 1
            base = module.path.split(".")
            base = base[: len(base) - up] if up else base
            return [".".join([*base, rest])] + [f"{s}.{rest}" for s in scopes]
        return [f"{s}.{rest}" for s in scopes] + [rest, f"probsnn.{rest}"]

    def _role(self, obj: Any, match: re.Match) -> str:
        target = match["target"].strip()
        shown = target.lstrip(".")
        if match["tilde"]:
            shown = shown.rsplit(".", 1)[-1]
        for path in self._candidates(obj, target):
            defined = self.canonical(path)
            if defined is not None and self.rendered(defined):
                return f"[`{shown}`][{defined}]"
        return f"`{shown}`"

    def _check_reexports(self, module: Any) -> None:
        """Warn about names a module re-exports from a private module that have no entry.

        In a module without ``__all__``, a re-export is an import kept unused on purpose, marked
        ``# noqa: F401`` (``from probsnn._pynapple import from_pynapple  # noqa: F401``); the
        helpers a module imports to use are not part of its interface."""
        lines = module.lines
        for name, member in module.members.items():
            if not member.is_alias or name.startswith("_"):
                continue
            parts = member.target_path.split(".")
            if parts[0] != self.root.name or not any(p.startswith("_") for p in parts[1:-1]):
                continue
            first, last = member.alias_lineno, member.alias_endlineno or member.alias_lineno
            if first is None or not any("F401" in line for line in lines[first - 1 : last]):
                continue
            defined = self.canonical(member.target_path)
            if defined is not None and not self.rendered(defined):
                LOG.warning(
                    "%s.%s, defined in %s, has no entry in the API reference: "
                    "render it on a page under docs/api/",
                    module.path,
                    name,
                    defined,
                )

    def _drop_listed_attributes(self, obj: Any, seen: set[str]) -> None:
        """Drop the entries of a class that would only repeat its docstring or say nothing.

        Undocumented attributes that the class docstring's ``Attributes:`` or ``Args:`` section
        describes (a NamedTuple's fields, the stored constructor arguments) are already in its
        tables; undocumented special methods (``__eq__``, ``__hash__``) are protocol plumbing."""
        if obj.is_alias or obj.path in seen:
            return
        seen.add(obj.path)
        if obj.is_class:
            listed = attribute_names(obj.docstring.value) if obj.docstring else set()
            for name, member in list(obj.members.items()):
                if member.is_alias or member.docstring is not None:
                    continue
                # a dataclass's fields make its __init__: they stay
                if (member.is_attribute and name in listed and "dataclass" not in obj.labels) or (
                    member.is_function and name.startswith("__") and name not in KEPT_SPECIAL
                ):
                    obj.del_member(name)
        for member in list(obj.members.values()):
            if not member.is_alias and (member.is_module or member.is_class):
                self._drop_listed_attributes(member, seen)

    # -- export tables -----------------------------------------------------------------------

    def _export_table(self, module: Any) -> None:
        rows = []
        for name in module.exports:
            if not isinstance(name, str):
                continue
            defined = self.canonical(f"{module.path}.{name}")
            if defined is None:
                continue
            target = self._get(defined)
            kind = target.kind.value if target is not None else ""
            if self.rendered(defined):
                link = f"[`{name}`][{defined}]"
            else:
                link = f"`{name}`"
                LOG.warning(
                    "%s exports %s, defined in %s, which has no entry in the API reference: "
                    "render it on a page under docs/api/",
                    module.path,
                    name,
                    defined,
                )
            rows.append(f"| {link} | {kind} | {_summary(target)} |")
        if not rows:
            return
        table = "\n".join(["| name | kind | summary |", "| --- | --- | --- |", *rows])
        text = module.docstring.value if module.docstring else ""
        module.docstring = griffe.Docstring(
            f"{text}\n\n**Exported names**\n\n{table}\n", parent=module
        )


ARG_SECTION = re.compile(r"^(?P<indent> *)(?:Args|Arguments|Parameters|Keyword Args):\s*$")
GROUPED = re.compile(
    r"^(?P<indent> +)(?P<names>[A-Za-z_]\w*(?: *, *[A-Za-z_]\w*)+)(?P<rest>(?: *\([^)]*\))?:.*)$"
)


def split_grouped_args(text: str) -> str:
    """Give each name of a grouped Google-style argument (``a, b: text``) its own entry."""
    lines = text.split("\n")
    out: list[str] = []
    section_indent: int | None = None
    i = 0
    while i < len(lines):
        line = lines[i]
        stripped = line.strip()
        indent = len(line) - len(line.lstrip(" "))
        if header := ARG_SECTION.match(line):
            section_indent = len(header["indent"])
        elif stripped and section_indent is not None and indent <= section_indent:
            section_indent = None
        grouped = GROUPED.match(line) if section_indent is not None else None
        if grouped is None or len(grouped["indent"]) <= section_indent:
            out.append(line)
            i += 1
            continue
        item_indent = len(grouped["indent"])
        block = [grouped["rest"]]
        i += 1
        while i < len(lines) and (
            (not lines[i].strip() and i + 1 < len(lines) and _indent(lines[i + 1]) > item_indent)
            or (lines[i].strip() and _indent(lines[i]) > item_indent)
        ):
            block.append(lines[i])
            i += 1
        for name in (n.strip() for n in grouped["names"].split(",")):
            out.append(f"{grouped['indent']}{name}{block[0]}")
            out.extend(block[1:])
    return "\n".join(out)


KEPT_SPECIAL = ("__init__", "__new__", "__post_init__", "__call__")
ATTRIBUTES = re.compile(r"^(?P<indent> *)(?:Attributes|Args|Arguments|Parameters):\s*$")
ITEM = re.compile(r"^(?P<indent> +)(?P<name>[A-Za-z_]\w*)(?: *\([^)]*\))?:")


def attribute_names(text: str) -> set[str]:
    """The names listed in the Google-style ``Attributes:`` and ``Args:`` sections."""
    names: set[str] = set()
    section: int | None = None
    item: int | None = None
    for line in text.split("\n"):
        if header := ATTRIBUTES.match(line):
            section, item = len(header["indent"]), None
            continue
        if section is None or not line.strip():
            continue
        if _indent(line) <= section:
            section = None
            continue
        entry = ITEM.match(line)
        if entry and (item is None or len(entry["indent"]) == item):
            item = len(entry["indent"])
            names.add(entry["name"])
    return names


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def _summary(obj: Any) -> str:
    """The first sentence of an object's docstring, fit for a table cell."""
    if obj is None or obj.docstring is None:
        return ""
    paragraph = obj.docstring.value.strip().split("\n\n", 1)[0]
    sentence = " ".join(paragraph.split())
    end = re.search(r"(?<=\.)\s(?=[A-Z])", sentence)
    sentence = sentence[: end.start()] if end else sentence
    return sentence.replace("|", "\\|")


def _public(member: Any) -> bool:
    if member.name.startswith("_"):
        return False
    try:
        return bool(member.is_public)
    except ALIAS_ERRORS:
        return True
