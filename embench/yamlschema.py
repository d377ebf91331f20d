"""Turn a YAML node tree into typed dataclasses, with file:line errors and no unknown keys."""

from __future__ import annotations

import collections.abc
import dataclasses
import difflib
import math
import types
import typing
from pathlib import Path
from typing import Any, Literal, TypeVar, Union

import yaml

from embench_agent.protocol import BOUND_RULES, broken_bound

from .errors import EmbenchError

T = TypeVar("T")

# Field metadata for values embench fills in itself; such keys are refused in YAML.
INTERNAL = {"internal": True}
MAX_INT = 2**53  # beyond this, neither SQLite's integers nor JSON's numbers hold it exactly


def bounded(default: Any = dataclasses.MISSING, **bounds: float) -> Any:
    """A dataclass field with a range (`min`, `above`, `max`), checked when the YAML is read; for a
    list, each item is checked."""
    return dataclasses.field(default=default, metadata=bounds)


class SchemaError(EmbenchError):
    """A YAML file does not match its schema; the message names file, line, key and fix."""


@dataclasses.dataclass
class Located:
    """Where each value came from, keyed by dotted path (`sweep.models[1]`)."""

    file: Path
    lines: dict[str, int] = dataclasses.field(default_factory=dict)

    def at(self, path: str) -> str:
        line = self.lines.get(path)
        return f"{self.file}:{line}" if line else str(self.file)

    def error(self, path: str, problem: str, fix: str = "") -> SchemaError:
        text = f"{self.at(path)}: {path}: {problem}"
        return SchemaError(f"{text}; {fix}" if fix else text)


def compose(path: Path) -> tuple[yaml.Node | None, Located]:
    """Parse a YAML file into a node tree (keeps line numbers)."""
    where = Located(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise SchemaError(f"{path}: file not found; pass the path of an existing file") from None
    except IsADirectoryError:
        raise SchemaError(f"{path}: is a folder, not a file; pass the path of the YAML file") from None
    except PermissionError:
        raise SchemaError(f"{path}: permission denied; make the file readable (chmod) or copy it") from None
    except OSError as exc:
        raise SchemaError(f"{path}: cannot read: {exc.strerror}; check the path and the disk") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        lineno = data[: exc.start].count(b"\n") + 1
        raise SchemaError(
            f"{path}:{lineno}: not UTF-8 text (byte 0x{data[exc.start]:02x}); save the file as UTF-8"
        ) from None
    try:
        return yaml.compose(text, Loader=yaml.SafeLoader), where
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise SchemaError(
            f"{path}{line}: YAML syntax error: {problem}; check indentation and quote values that contain ':' or '#'"
        ) from None


def build(node: yaml.Node | None, tp: type[T], where: Located, path: str = "") -> T:
    """Convert `node` to `tp` (a dataclass or a typed container), recording line numbers."""
    if node is not None:
        where.lines.setdefault(path, node.start_mark.line + 1)
    return typing.cast(T, _convert(node, tp, where, path))


_SCALARS = {int: "an integer", float: "a number", str: "a string", bool: "true or false"}


def _describe(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(tp))
    if origin in (list, tuple):
        return "a list"
    if origin in (dict, collections.abc.Mapping):
        return "a mapping"
    if dataclasses.is_dataclass(tp):
        return "a mapping"
    return _SCALARS.get(tp, f"a {getattr(tp, '__name__', str(tp))}")


def _convert(node: yaml.Node | None, tp: Any, where: Located, path: str) -> Any:
    origin = typing.get_origin(tp)
    if origin in (Union, types.UnionType):
        options = [a for a in typing.get_args(tp) if a is not type(None)]
        if node is None or (isinstance(node, yaml.ScalarNode) and node.tag.endswith(":null")):
            if type(None) in typing.get_args(tp):
                return None
        return _convert(node, options[0], where, path)
    if node is None:
        raise where.error(path, "missing value", f"give {_describe(tp)}")
    if dataclasses.is_dataclass(tp):
        return _dataclass(node, tp, where, path)
    if origin in (list, tuple):
        if not isinstance(node, yaml.SequenceNode):
            raise where.error(path, f"expected a list, got {_kind(node)}", "write it as [a, b] or '- a' lines")
        item_tp = typing.get_args(tp)[0]
        out = []
        for i, item in enumerate(node.value):
            sub = f"{path}[{i}]"
            where.lines[sub] = item.start_mark.line + 1
            out.append(_convert(item, item_tp, where, sub))
        return out if origin is list else tuple(out)
    if origin in (dict, collections.abc.Mapping):
        if not isinstance(node, yaml.MappingNode):
            raise where.error(path, f"expected a mapping, got {_kind(node)}", "write it as key: value lines")
        _, value_tp = typing.get_args(tp)
        out_map = {}
        for key_node, value_node in node.value:
            sub = f"{path}.{key_node.value}"
            where.lines[sub] = key_node.start_mark.line + 1
            out_map[str(key_node.value)] = _convert(value_node, value_tp, where, sub)
        return out_map
    return _scalar(node, tp, where, path)


def _kind(node: yaml.Node) -> str:
    if isinstance(node, yaml.MappingNode):
        return "a mapping"
    if isinstance(node, yaml.SequenceNode):
        return "a list"
    return repr(node.value)


def _scalar(node: yaml.Node, tp: Any, where: Located, path: str) -> Any:
    if not isinstance(node, yaml.ScalarNode):
        raise where.error(path, f"expected {_describe(tp)}, got {_kind(node)}", f"write {_describe(tp)} there")
    value = _construct(node)
    if typing.get_origin(tp) is Literal:
        choices = typing.get_args(tp)
        if value not in choices:
            hint = difflib.get_close_matches(str(value), [str(c) for c in choices], n=1)
            fix = f"did you mean {hint[0]!r}?" if hint else f"use {_describe(tp)}"
            raise where.error(path, f"{value!r} is not allowed", fix)
        return value
    if tp is Any:
        return value
    if tp is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if tp is float and isinstance(value, float) and not math.isfinite(value):
        raise where.error(path, f"{value!r} is not a finite number", "write a number")
    if tp is int and isinstance(value, int) and not isinstance(value, bool) and abs(value) > MAX_INT:
        raise where.error(path, f"{value} is too large", f"use a number below {MAX_INT:,}")
    if tp is str and isinstance(value, (int, float)) and not isinstance(value, bool):
        return node.value
    if not isinstance(value, tp) or (tp is int and isinstance(value, bool)):
        raise where.error(path, f"expected {_describe(tp)}, got {value!r}", f"write {_describe(tp)}")
    return value


def _construct(node: yaml.ScalarNode) -> Any:
    loader = yaml.SafeLoader("")
    try:
        return loader.construct_object(node, deep=True)
    finally:
        loader.dispose()


def _check_bounds(value: Any, meta: Any, where: Located, path: str) -> None:
    """The ranges a field's metadata sets (min, above, max: as in embench_agent.protocol)."""
    if isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            _check_bounds(item, meta, where, f"{path}[{i}]")
        return
    key = broken_bound(value, meta)
    if key is not None:
        rule, name = next(said for k, said, _ in BOUND_RULES if k == key), path.rsplit(".", 1)[-1]
        raise where.error(path, f"{name} must be {rule} {meta[key]:g}, not {value!r}", f"set it in {where.file}")


def _dataclass(node: yaml.Node, tp: Any, where: Located, path: str) -> Any:
    if not isinstance(node, yaml.MappingNode):
        raise where.error(
            path or "(top level)", f"expected a mapping, got {_kind(node)}", "write it as key: value lines"
        )
    hints = typing.get_type_hints(tp)
    fields = {f.name: f for f in dataclasses.fields(tp) if not f.metadata.get("internal")}
    values: dict[str, Any] = {}
    for key_node, value_node in node.value:
        key = str(key_node.value)
        sub = f"{path}.{key}" if path else key
        where.lines[sub] = key_node.start_mark.line + 1
        if key not in fields:
            hint = difflib.get_close_matches(key, list(fields), n=1)
            fix = f"did you mean {hint[0]!r}?" if hint else "known keys: " + ", ".join(fields)
            raise where.error(sub, "unknown key", fix)
        if key in values:
            raise where.error(sub, "key given twice", "keep one")
        values[key] = _convert(value_node, hints[key], where, sub)
        _check_bounds(values[key], fields[key].metadata, where, sub)
    for name, field in fields.items():
        missing = field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING
        if missing and name not in values:
            sub = f"{path}.{name}" if path else name
            raise where.error(path or "(top level)", f"required key {name!r} is missing", f"add {sub}")
    return tp(**values)
