"""The JSON Schema of a form to fill, checked and flattened into fields.

A schema comes from a caller (a REST body, an MCP tool call), so it is read as hostile:
bounded in size and depth, keys must be strings, `$ref` only inside the document (never
fetched: no network), no recursion, and only what a form needs (objects with properties,
strings with formats, numbers, integers, booleans, enums, arrays). Anything else is a
clear `InvalidInputError` before any work is done.
"""

from __future__ import annotations

import re
import urllib.parse
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from typing import Any

from jsonschema import Draft202012Validator, FormatChecker
from jsonschema.exceptions import SchemaError

from remem.errors import InvalidInputError

__all__ = ["FormField", "form_fields", "invalid_paths", "pointer", "validator"]

MAX_FIELDS = 200
MAX_DEPTH = 8  # objects inside objects
MAX_NODES = 20_000  # values anywhere in the schema document
MAX_NESTING = 40  # containers inside containers anywhere in the document
MAX_KEY_CHARS = 200
_REGEX_KEYWORDS = frozenset({"pattern", "patternProperties", "propertyNames"})
MAX_ENUM = 200  # choices a field offers (each is shown to a model)
# keywords that start a new base for references, which `_follow` does not track
_NEW_BASES = frozenset({"$id", "$anchor", "$dynamicAnchor"})
LEAF_KINDS = frozenset({"string", "number", "integer", "boolean", "array"})


@dataclass(frozen=True)
class FormField:
    """One field to fill: its JSON pointer, keys from the root, resolved sub-schema, and
    what kind of value it takes (for arrays, `item_*` say what the items take)."""

    path: str
    keys: tuple[str, ...]
    schema: Mapping[str, Any]
    kind: str
    format: str | None = None
    enum: tuple[Any, ...] = ()
    title: str = ""
    description: str = ""
    item_kind: str | None = None
    item_format: str | None = None
    item_enum: tuple[Any, ...] = ()

    @property
    def words(self) -> str:
        """The field named in words: its keys, title and description."""
        keys = " ".join(_split_words(key) for key in self.keys)
        return " ".join(part for part in (keys, self.title, self.description) if part)


def pointer(keys: tuple[str, ...]) -> str:
    """The JSON pointer of a path (RFC 6901: `~` and `/` escaped)."""
    return "".join("/" + key.replace("~", "~0").replace("/", "~1") for key in keys)


def form_fields(schema: Any) -> list[FormField]:
    """The leaf fields of a form schema, in document order; raises InvalidInputError for a
    schema that is malformed, too big or deep, refers outside itself, or is unsupported."""
    if not isinstance(schema, Mapping):
        raise InvalidInputError(f"a form schema must be a JSON object, not {type(schema).__name__}")
    _check_document(schema)
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as error:
        raise InvalidInputError(
            f"the form schema is not valid JSON Schema: {error.message}"
        ) from None
    root, refs = _resolved(schema, schema, ())
    if _kind(root, "") != "object":
        raise InvalidInputError('a form schema must describe an object ("type": "object")')
    fields = list(_fields(schema, root, (), refs, 0))
    if not fields:
        raise InvalidInputError("the form schema has no fields (no properties)")
    return fields


def validator(schema: Mapping[str, Any]) -> Draft202012Validator:
    """A Draft 2020-12 validator that checks formats (uri and phone included)."""
    return Draft202012Validator(schema, format_checker=_FORMATS)


def invalid_paths(check: Draft202012Validator, value: Any) -> set[str]:
    """JSON pointers of the values in `value` that break the schema. A missing required
    field is not one: memory leaves what it does not know empty."""
    return {
        pointer(tuple(str(part) for part in error.absolute_path))
        for error in check.iter_errors(value)
        if error.validator != "required"
    }


# -- the whole document ----------------------------------------------------------------------


def _check_document(schema: Mapping[str, Any]) -> None:
    """Bounded size and nesting, string keys, local references, small patterns; walked
    without recursion, so a hostile depth cannot exhaust the stack."""
    stack: list[tuple[Any, int]] = [(schema, 1)]
    nodes = 0
    references = []
    while stack:
        node, depth = stack.pop()
        nodes += 1
        if nodes > MAX_NODES:
            raise InvalidInputError(f"the form schema is too big (over {MAX_NODES} values)")
        if depth > MAX_NESTING:
            raise InvalidInputError(f"the form schema nests deeper than {MAX_NESTING} levels")
        if isinstance(node, Mapping):
            for key, child in node.items():
                _check_entry(key, child)
                if key in _NEW_BASES and (depth > 1 or key != "$id"):
                    raise InvalidInputError(
                        f"{key} inside a form schema is not supported (only a top-level $id)"
                    )
                if key == "$ref":
                    references.append(child)
                stack.append((child, depth + 1))
        elif isinstance(node, list | tuple):
            stack.extend((child, depth + 1) for child in node)
    for reference in references:  # every one resolves, wherever it sits
        _follow(schema, reference)


def _check_entry(key: Any, value: Any) -> None:
    if not isinstance(key, str):
        raise InvalidInputError(f"form schema keys must be strings, not {key!r}")
    if len(key) > MAX_KEY_CHARS:
        raise InvalidInputError(f"a form schema key is longer than {MAX_KEY_CHARS} characters")
    if key in {"$ref", "$dynamicRef", "$recursiveRef"}:
        if not isinstance(value, str) or not (value == "#" or value.startswith("#/")):
            raise InvalidInputError(
                f"{key} {value!r} points outside the form schema: only '#/...' references"
                " inside it are followed (nothing is fetched)"
            )
        if key != "$ref":
            raise InvalidInputError(f"{key} is not supported in a form schema; use $ref")
    if key in _REGEX_KEYWORDS and isinstance(value, str | dict):
        # a caller's regular expression would run on values with Python's backtracking
        # engine, which holds the interpreter: one crafted pattern stalls every request
        raise InvalidInputError(
            f"{key} is not supported in a form schema (a regular expression can take"
            " unbounded time to check); say the shape in `format` or `description`"
        )
    if key == "enum" and isinstance(value, list) and len(value) > MAX_ENUM:
        raise InvalidInputError(f"an enum in the form schema has over {MAX_ENUM} values")


# -- fields ----------------------------------------------------------------------------------


def _fields(
    root: Mapping[str, Any],
    node: Mapping[str, Any],
    keys: tuple[str, ...],
    refs: tuple[str, ...],
    depth: int,
) -> Iterator[FormField]:
    if depth > MAX_DEPTH:
        raise InvalidInputError(f"the form nests objects deeper than {MAX_DEPTH} levels")
    properties = node.get("properties")
    if not isinstance(properties, Mapping) or not properties:
        raise InvalidInputError(f"object {pointer(keys) or '/'} of the form has no properties")
    count = 0
    for key, raw in properties.items():
        child, child_refs = _resolved(root, raw, refs)
        path = (*keys, key)
        if _kind(child, pointer(path)) == "object":
            nested = _fields(root, child, path, child_refs, depth + 1)
        else:
            nested = iter([_leaf(root, child, path, child_refs)])
        for found in nested:
            count += 1
            if count > MAX_FIELDS:
                raise InvalidInputError(f"the form has more than {MAX_FIELDS} fields")
            yield found


def _leaf(
    root: Mapping[str, Any], node: Mapping[str, Any], keys: tuple[str, ...], refs: tuple[str, ...]
) -> FormField:
    path = pointer(keys)
    kind = _kind(node, path)
    field = FormField(
        path=path,
        keys=keys,
        schema=node,
        kind=kind,
        format=node.get("format") if isinstance(node.get("format"), str) else None,
        enum=tuple(node.get("enum") or ()),
        title=str(node.get("title") or ""),
        description=str(node.get("description") or ""),
    )
    if kind != "array":
        return field
    items, _ = _resolved(root, node.get("items") or {}, refs)
    item_kind = _kind(items, path + "/items") if items else "string"
    if item_kind not in LEAF_KINDS - {"array"}:
        raise InvalidInputError(f"field {path}: arrays of {item_kind} are not supported in forms")
    item_format = items.get("format") if isinstance(items.get("format"), str) else None
    return replace(
        field,
        item_kind=item_kind,
        item_format=item_format,
        item_enum=tuple(items.get("enum") or ()),
    )


def _resolved(
    root: Mapping[str, Any], node: Any, refs: tuple[str, ...]
) -> tuple[Mapping[str, Any], tuple[str, ...]]:
    """`node` with local `$ref`s followed, and a nullable `anyOf`/`oneOf` [X, null] read as
    X; with the references followed on the way from the root (`refs` so far), so that a
    reference back into itself is refused instead of followed for ever."""
    followed = list(refs)
    while isinstance(node, Mapping) and "$ref" in node:
        reference = node["$ref"]
        if reference in followed:
            raise InvalidInputError(f"the form schema refers to itself through {reference!r}")
        followed.append(reference)
        siblings = {k: v for k, v in node.items() if k != "$ref"}
        node = {**_follow(root, reference), **siblings}
    if not isinstance(node, Mapping):
        raise InvalidInputError(f"a form schema entry must be an object, not {node!r:.40}")
    for combinator in ("anyOf", "oneOf"):
        options = node.get(combinator)
        if isinstance(options, list):
            real = [o for o in options if not (isinstance(o, Mapping) and o.get("type") == "null")]
            if len(real) != 1:
                raise InvalidInputError(f"{combinator} with several choices is not supported")
            chosen, chain = _resolved(root, real[0], tuple(followed))
            rest = {k: v for k, v in node.items() if k != combinator}
            return _resolved(root, {**chosen, **rest}, chain)
    return node, tuple(followed)


def _follow(root: Mapping[str, Any], reference: str) -> Mapping[str, Any]:
    node: Any = root
    for raw in reference.removeprefix("#").split("/")[1:]:
        part = urllib.parse.unquote(raw).replace("~1", "/").replace("~0", "~")
        if not isinstance(node, Mapping) or part not in node:
            raise InvalidInputError(f"$ref {reference!r} points at nothing in the form schema")
        node = node[part]
    if not isinstance(node, Mapping):
        raise InvalidInputError(f"$ref {reference!r} does not point at a schema")
    return node


def _kind(node: Mapping[str, Any], path: str) -> str:
    kind = node.get("type")
    if isinstance(kind, list):
        real = [k for k in kind if k != "null"]
        kind = real[0] if len(real) == 1 else None
    if kind is None and "properties" in node:
        kind = "object"
    if kind is None and "enum" in node:
        kind = "string"
    if kind == "object" or kind in LEAF_KINDS:
        return str(kind)
    raise InvalidInputError(
        f"field {path or '/'} has type {node.get('type')!r}: a form field must be an object,"
        " string, number, integer, boolean or array (one type, optionally with null)"
    )


def _split_words(key: str) -> str:
    spaced = re.sub(r"([a-z0-9])([A-Z])", r"\1 \2", key)
    return re.sub(r"[_\-.\s]+", " ", spaced).strip().lower()


# -- formats ---------------------------------------------------------------------------------

_FORMATS = FormatChecker()
_PHONE = re.compile(r"\+?[\d\s().-]{7,24}")


@_FORMATS.checks("uri")
def _is_uri(value: object) -> bool:
    if not isinstance(value, str):
        return True
    parts = urllib.parse.urlsplit(value)
    return bool(parts.scheme) and (bool(parts.netloc) or parts.scheme in {"mailto", "tel", "urn"})


@_FORMATS.checks("phone")
def _is_phone(value: object) -> bool:
    if not isinstance(value, str):
        return True
    digits = re.sub(r"\D", "", value)
    return bool(_PHONE.fullmatch(value)) and 7 <= len(digits) <= 15
