"""Reading one rules file: YAML with a position for every key, and problems that point there.

Rules files are parsed once into a node tree, which gives each key its line and column, and the
same tree builds the data. Problems name ``file:line:column``, the key and a hint.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from ..errors import TouchpointError


@dataclass(frozen=True)
class Problem:
    file: str
    line: int
    column: int
    key: str
    message: str
    severity: str = "error"  # or "warning": reported, but the rules still load

    def __str__(self) -> str:
        where = f"{self.key}: " if self.key else ""
        level = "warning: " if self.severity == "warning" else ""
        return f"{self.file}:{self.line}:{self.column}: {level}{where}{self.message}"


class RulesError(TouchpointError):
    """The rules do not validate; ``problems`` lists every one found."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


# libyaml's parser when PyYAML was built with it: several times faster on a large rules folder,
# with the same node marks (line and column) as the pure-Python one.
_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class YamlFile:
    """One YAML file and the problems found in it, located by dotted key paths."""

    # An empty file is an error, never "nothing configured": a file being rewritten in place
    # (an editor, scp, rsync --inplace) is empty for a moment, and that moment must not switch
    # a campaign or the site's settings off (docs/rules.md#saving-safely).
    EMPTY = "the file is empty (or only comments): write its settings, or delete the file"

    def __init__(self, path: Path, problems: list[Problem]) -> None:
        self.path = path
        self.name = str(path)
        self.problems = problems
        self.positions: dict[str, tuple[int, int]] = {}  # "a.b.0.c" -> (line, column)

    def problem(self, key: str, message: str, *, severity: str = "error") -> None:
        """Report ``message`` at ``key`` (dotted; written nested or dotted in the file), or at
        the nearest enclosing key the file has."""
        probe = key
        while probe and probe not in self.positions:
            probe = probe.rpartition(".")[0]
        line, column = self.positions.get(probe, (1, 1))
        self.problems.append(Problem(self.name, line, column, key, message, severity))

    def position(self, key: str = "") -> str:
        line, _ = self.positions.get(key, (1, 1))
        return f"{self.name}:{line}"

    def load(self) -> Any:
        """The file's data, or None after reporting why it cannot be read or that it is empty."""
        try:
            text = self.path.read_text(encoding="utf-8")
            loader = _Loader(text)
            try:
                node = loader.get_single_node()
                data = loader.construct_document(node) if node is not None else None
            finally:
                loader.dispose()
        except UnicodeDecodeError:
            self.problems.append(Problem(self.name, 1, 1, "", "not UTF-8 text"))
            return None
        except OSError as exc:
            self.problems.append(Problem(self.name, 1, 1, "", f"cannot read: {exc.strerror}"))
            return None
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark
            line, column = (mark.line + 1, mark.column + 1) if mark else (1, 1)
            self.problems.append(
                Problem(self.name, line, column, "", f"YAML syntax: {exc.problem}")
            )
            return None
        except yaml.reader.ReaderError as exc:  # a control character: a position, no mark
            before = text[: exc.position]
            line, column = before.count("\n") + 1, exc.position - before.rfind("\n")
            message = f"YAML: character #x{exc.character:04x} is not allowed"
            self.problems.append(Problem(self.name, line, column, "", message))
            return None
        if node is None:
            self.problems.append(Problem(self.name, 1, 1, "", self.EMPTY))
            return None
        self._index(node, "")
        return data

    def _index(self, node: yaml.Node, path: str) -> None:
        self.positions.setdefault(path, (node.start_mark.line + 1, node.start_mark.column + 1))
        if isinstance(node, yaml.MappingNode):
            keys: set[str] = set()
            for key_node, value_node in node.value:
                key = str(key_node.value)
                child = f"{path}.{key}" if path else key
                if key in keys:
                    line, column = key_node.start_mark.line + 1, key_node.start_mark.column + 1
                    self.problems.append(
                        Problem(self.name, line, column, child, "key appears twice")
                    )
                keys.add(key)
                mark = key_node.start_mark
                self.positions[child] = (mark.line + 1, mark.column + 1)
                self._index(value_node, child)
        elif isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                self._index(item, f"{path}.{i}" if path else str(i))

    def mapping(self, value: Any, key: str) -> dict[str, Any] | None:
        if not isinstance(value, dict):
            self.problem(key, "must be a mapping")
            return None
        return value

    def known_keys(self, data: dict[str, Any], allowed: tuple[str, ...], at: str) -> None:
        """Report keys of ``data`` (found at ``at``) that are not in ``allowed``."""
        for key in data:
            if key not in allowed:
                path = f"{at}.{key}" if at else str(key)
                close = difflib.get_close_matches(str(key), allowed, n=1)
                guess = f" — did you mean `{close[0]}`?" if close else ""
                expected = ", ".join(sorted(allowed))
                self.problem(path, f"unknown key{guess} (expected one of: {expected})")
