"""The config file as read: YAML -> plain data, with the line of every key and list item, and its problems.

The YAML is composed into nodes (not just loaded) so each value keeps its line: pydantic's error locations
are key paths, and `ConfigFile` maps a key path back to the nearest line that exists in the file. Duplicate
keys (YAML would silently keep the last), merge keys and self-referring aliases are reported here too.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar, get_args

import yaml

from remixd.errors import Problem

if TYPE_CHECKING:  # pydantic only where a section is checked: `remixd status` reads a valid config without it
    from pydantic import BaseModel, ValidationError

KeyPath = tuple[str | int, ...]
_Model = TypeVar("_Model", bound="BaseModel")
_KEY_HINT = "never put an API key in a config file: name a file (api_key_file) or a variable (api_key_env)"


def _path_text(path: KeyPath) -> str:
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else part)
    return text


def _did_you_mean(key: str, known: list[str]) -> str:
    if key.lower().replace("-", "_") in ("api_key", "key", "apikey", "token", "ideogram_api_key"):
        return f"did you mean 'api_key_env' or 'api_key_file' (under api:)? {_KEY_HINT}"
    close = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
    return f"did you mean '{close[0]}'?" if close else f"remove it; known keys: {', '.join(known)}"


_MAYBE_SECRET = frozenset({"api_key_env", "api_key_file", "base_url"})  # never quoted in a message
_SHOWN_CHARS = 60  # a wrong value is quoted in the message, but a whole mis-indented section is not
_TYPE_FIXES = {
    "int_type": "write a whole number without quotes",
    "float_type": "write a number without quotes",
    "bool_type": "write true or false",
    "string_type": "write text (quote it if YAML reads it as a number, date or boolean)",
    "list_type": "write a list: [a, b] or one '- item' per line",
    "tuple_type": "write a list: [a, b] or one '- item' per line",
    "dict_type": "write a mapping, its keys indented below this one",
    "literal_error": "use one of the values above",
    "too_short": "add at least one item",
    "too_long": "remove items to stay within the limit",
}
# Fixes for a value that does not match its pattern, by the key it is written under.
_PATTERN_FIXES = {
    "name": "use lower-case letters, digits, '-' and '_', e.g. 'poster'",
    "api_key_env": "write the name of the variable, e.g. IDEOGRAM_API_KEY (never the key itself)",
    "listen": "write host:port, e.g. 127.0.0.1:9464",
    "color_hex": "write '#' and six hex digits in quotes, e.g. '#ff8800'",
}
_RANGE_WORDS = {"gt": "greater than", "ge": "at least", "lt": "less than", "le": "at most"}
_BOOLEAN_WORDS = frozenset({"y", "yes", "n", "no", "on", "off"})  # YAML 1.1 booleans besides true/false
_QUOTE_BRACE = "a value starting with { must be quoted"
_TAB_FIX = "YAML does not allow tabs; indent with spaces"


class ConfigFile:
    """YAML text -> plain data, remembering the line of every key and list item; collects the problems."""

    def __init__(self, file: str) -> None:
        self.file = file
        self.lines: dict[KeyPath, int] = {(): 1}
        self.problems: list[Problem] = []
        # Unquoted values YAML 1.1 reads as booleans (`OFF`, `yes`), as written: a message can quote them.
        self.booleans: dict[KeyPath, str] = {}

    def line(self, path: KeyPath) -> int:
        while path not in self.lines:  # a missing key: point at its parent
            path = path[:-1]
        return self.lines[path]

    def problem(self, path: KeyPath, message: str, fix: str = "") -> Problem:
        return Problem(self.file, self.line(path), _path_text(path), message, fix)

    def add(self, path: KeyPath, message: str, fix: str = "") -> None:
        self.problems.append(self.problem(path, message, fix))

    def read(self, path: Path) -> Any:
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            return self._whole_file(None, f"no such file: {path}", "create it (see config.example.yaml) or pass -c")
        except IsADirectoryError:
            return self._whole_file(None, f"{path} is a folder", "pass the config file itself with -c PATH")
        except OSError as error:
            return self._whole_file(None, f"{path} cannot be read ({error.strerror})", "check its permissions")
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError as error:
            line = raw[: error.start].count(b"\n") + 1
            return self._whole_file(line, "the file is not UTF-8 text", "save it as UTF-8")
        return self.parse(text)

    def parse(self, text: str) -> Any:
        """YAML (or JSON, which YAML reads too) text -> plain data, its problems recorded."""
        try:
            loader = yaml.SafeLoader(text)  # the reader rejects control characters (a NUL) right here
        except yaml.reader.ReaderError as error:
            line = text[: error.position].count("\n") + 1
            code = error.character if isinstance(error.character, int) else ord(str(error.character)[:1] or "\0")
            return self._whole_file(line, f"the control character U+{code:04X} is not allowed in YAML", "remove it")
        try:
            node = loader.get_single_node()
            if node is None:
                return self._whole_file(1, "the file is empty", "start from config.example.yaml")
            return self._construct(node, (), loader, frozenset())
        except yaml.MarkedYAMLError as error:
            mark = error.problem_mark or error.context_mark
            what = "; ".join(part for part in (error.context, error.problem) if part)
            at = mark.line + 1 if mark else None
            return self._whole_file(at, f"YAML syntax error: {what}", _syntax_fix(text, at, what))
        except yaml.YAMLError as error:
            return self._whole_file(None, f"YAML error: {error}", "fix the YAML syntax")
        except RecursionError:  # `a: [[[[…` thousands deep exhausts the parser (and would be a traceback)
            depth_line: int | None = getattr(loader, "line", None)
            return self._whole_file(
                None if depth_line is None else depth_line + 1, "the YAML is nested too deeply to read", "flatten it"
            )
        finally:
            loader.dispose()

    def _whole_file(self, line: int | None, message: str, fix: str) -> None:
        self.problems.append(Problem(self.file, line, "", message, fix))

    def _construct(self, node: yaml.Node, path: KeyPath, loader: yaml.SafeLoader, active: frozenset[int]) -> Any:
        if id(node) in active:  # `&a [*a]`: an alias inside itself would recurse forever
            self.add(path, "a YAML alias refers to itself", "remove the recursive alias")
            return None
        inner = active | {id(node)}
        if isinstance(node, yaml.MappingNode):
            result: dict[str, Any] = {}
            for key_node, value_node in node.value:
                key_line = key_node.start_mark.line + 1
                if not isinstance(key_node, yaml.ScalarNode) or key_node.tag == "tag:yaml.org,2002:merge":
                    problem = Problem(
                        self.file,
                        key_line,
                        _path_text(path),
                        "YAML merge (<<) and complex keys are not supported",
                        "write the keys out; `defaults:` shares request fields",
                    )
                    self.problems.append(problem)  # fmt: skip
                    continue
                key = str(key_node.value)  # as written: `on:` stays "on", not YAML 1.1's True
                if key in result:
                    message = f"duplicate key (first at line {self.lines[(*path, key)]})"
                    fix = "keep one; YAML would silently use the last"
                    self.problems.append(Problem(self.file, key_line, _path_text((*path, key)), message, fix))
                    continue
                self.lines[(*path, key)] = key_line
                result[key] = self._construct(value_node, (*path, key), loader, inner)
            return result
        if isinstance(node, yaml.SequenceNode):
            items = []
            for index, item in enumerate(node.value):
                self.lines[(*path, index)] = item.start_mark.line + 1
                items.append(self._construct(item, (*path, index), loader, inner))
            return items
        plain = isinstance(node, yaml.ScalarNode) and node.style is None
        if plain and node.tag.endswith((":int", ":float")) and ":" in node.value:
            return str(node.value)  # YAML 1.1 reads `4:3` as the base-60 number 243; nobody means that
        if plain and node.tag.endswith(":bool") and str(node.value).lower() in _BOOLEAN_WORDS:
            self.booleans[path] = str(node.value)
        try:
            return loader.construct_object(node)
        except yaml.YAMLError as error:  # an unknown tag (`!!python/name:…`) or a malformed timestamp
            self.add(path, f"cannot read this value ({getattr(error, 'problem', error)})", "write a plain value")
            return None

    def convert(
        self, error: ValidationError, model: type[BaseModel], where: Callable[[KeyPath], KeyPath]
    ) -> list[Problem]:
        """pydantic's errors as located problems; `where` maps an error location to a key path in the file."""
        problems = []
        for item in error.errors():
            loc: KeyPath = tuple(item["loc"])
            path, kind, key = where(loc), item["type"], str(loc[-1]) if loc else ""
            if kind == "extra_forbidden":
                problems.append(self.problem(path, f"unknown key '{key}'", _unknown_key_fix(key, model, loc[:-1])))
            elif kind == "string_type" and isinstance(item["input"], dict):  # `prompt: {stem}` is a mapping
                problems.append(self.problem(path, f"{_QUOTE_BRACE}: YAML read it as a mapping", _quote_fix(path)))
            elif kind == "string_type" and path in self.booleans:
                written = self.booleans[path]
                message = f"YAML reads an unquoted {written} as the boolean {str(item['input']).lower()}"
                problems.append(self.problem(path, message, f"write it in quotes: '{written}'"))
            elif kind == "missing":
                problems.append(self.problem(path, f"required key '{key}' is missing", f"add {key}: …"))
            elif kind == "remix_request":
                ctx = item.get("ctx") or {}
                problems.append(self.problem(path, str(ctx.get("message", item["msg"])), str(ctx.get("fix", ""))))
            else:
                shown = repr(item["input"])
                shown = shown if len(shown) <= _SHOWN_CHARS else shown[: _SHOWN_CHARS - 1] + "…"
                message = item["msg"].removeprefix("Value error, ").replace("valid tuple", "valid list")
                if path and path[-1] in _MAYBE_SECRET:  # a key pasted where its variable's name goes
                    shown = "a value not shown here, as it may be a secret"
                message = f"{message[:1].lower()}{message[1:]} (got {shown})"
                problems.append(self.problem(path, message, _value_fix(kind, path, item.get("ctx") or {})))
        return problems

    def schema(self, model: type[_Model], raw: Any, prefix: KeyPath) -> _Model | None:
        from pydantic import ValidationError

        try:
            return model.model_validate(raw)
        except ValidationError as error:
            self.problems.extend(self.convert(error, model, lambda loc: (*prefix, *loc)))
            return None


def _syntax_fix(text: str, line: int | None, what: str) -> str:
    lines = text.splitlines()
    nearby = lines[max(0, (line or 1) - 2) : line or 1]
    if "'\\t'" in what or any(row[: len(row) - len(row.lstrip())].count("\t") for row in nearby):
        return _TAB_FIX
    if any(re.search(r":\s+\{[^}]*\}\s*[^\s,}]", row) for row in nearby):
        return f'{_QUOTE_BRACE}: write prompt: "{{stem}} …" with the quotes'
    return "check the indentation, colons and quotes here and on the line before"


def _quote_fix(path: KeyPath) -> str:
    key = path[-1] if path and isinstance(path[-1], str) else "value"
    return f'write it in quotes, e.g. {key}: "{{stem}} on a beach"'


def _value_fix(kind: str, path: KeyPath, ctx: dict[str, Any]) -> str:
    """How to fix a value of the right type that is out of range or of the wrong form."""
    for bound, words in _RANGE_WORDS.items():
        if bound in ctx:
            return f"write a number {words} {ctx[bound]:g}"
    if kind == "string_pattern_mismatch":
        key = next((part for part in reversed(path) if isinstance(part, str)), "")
        default = "write an 8-digit hex code, e.g. 'AB12CD34'" if key == "style_codes" else "match the pattern shown"
        return _PATTERN_FIXES.get(key, default)
    return _TYPE_FIXES.get(kind, "")


def _unknown_key_fix(key: str, model: type[BaseModel], loc: KeyPath) -> str:
    """What to do with a key the section does not take; some are right, in the wrong section."""
    from remixd.config.model import RuleSchema  # only for a rule's key: not on `remixd status`'s path
    from remixd.config.state_model import InboxSchema
    from remixd.ideogram.requests import RemixRequest

    section = _section_model(model, loc)
    if section is RuleSchema and key in _known_keys(RemixRequest, ()):
        return f"move it under `request:` (Ideogram's fields go in the rule's request, e.g. request: {{{key}: …}})"
    if section is InboxSchema and key == "match":
        return "globs belong to a rule: put them in a rule's match: and name that rule in this inbox's rules:"
    return _did_you_mean(key, _known_keys(model, loc))


def _section_model(model: type[BaseModel], loc: KeyPath) -> type[BaseModel] | None:
    current: type[BaseModel] | None = model
    for part in loc:
        if current is not None and isinstance(part, str):
            field = next((f for name, f in current.model_fields.items() if (f.alias or name) == part), None)
            current = _nested_model(field.annotation) if field is not None else None
    return current


def _known_keys(model: type[BaseModel], loc: KeyPath) -> list[str]:
    from remixd.ideogram.requests import RemixRequest

    current = _section_model(model, loc)
    if current is None:
        return []
    names = [field.alias or name for name, field in current.model_fields.items()]
    return [*names, "magic_prompt"] if current is RemixRequest else names


def _nested_model(annotation: Any) -> type[BaseModel] | None:
    from pydantic import BaseModel

    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for argument in get_args(annotation):
        found = _nested_model(argument)
        if found is not None:
            return found
    return None
