"""Seam's pinned OpenAPI document (spec/seam) as JSON Schema validators, for the contract tests.

The document is OpenAPI 3.0, whose Schema Object is JSON Schema draft 4 (`$ref` ignores its
siblings, `exclusiveMinimum` is a boolean) plus a few keywords of its own. Before validating,
every schema in it is translated:

- `nullable: true` allows null: `type` becomes `[type, "null"]`, an `enum` gains null, and a
  schema without `type` that composes others (`oneOf`, `anyOf`, `allOf`, `$ref`) is wrapped
  in `anyOf: [{type: null}, ...]`. `nullable: false` and a `nullable` schema with neither
  (which already accepts null) are left as they are. A field the spec does not mark nullable
  must be a value or absent, never null.
- A `oneOf` with a `discriminator` becomes an `anyOf`: the variant is the one whose
  discriminator property (e.g. `event_type`) matches, and each variant pins that property
  with an `enum`, so "at least one variant validates" is the discriminator's selection, and
  it still holds when the spec lists one type twice (a plain `oneOf` would then fail it).

Formats are checked (`uuid`, `date-time`, `uri`, `email`; `float` is only a hint).
"""

from __future__ import annotations

import copy
import functools
import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from jsonschema import Draft4Validator, FormatChecker
from jsonschema.exceptions import ValidationError, best_match
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT4

ROOT = Path(__file__).resolve().parents[2]
SPEC_DIR = ROOT / "spec" / "seam"
DOCUMENT_URI = "urn:keycourier:seam-openapi"
# Parameters the `seam` SDK adds to every GET query: `_strict=true` asks Seam to reject
# parameters it does not know (as check_request does here).
SDK_QUERY_PARAMETERS = {"_strict": "true"}
_SUBSCHEMA_LISTS = ("allOf", "anyOf", "oneOf")
_SUBSCHEMA_MAPS = ("properties", "patternProperties")


def translate(schema: Any) -> Any:
    """An OpenAPI 3.0 Schema Object as a JSON Schema draft 4 schema (a new object)."""
    if not isinstance(schema, Mapping):
        return schema
    out: dict[str, Any] = dict(schema)
    for key in _SUBSCHEMA_MAPS:
        if isinstance(out.get(key), Mapping):
            out[key] = {name: translate(sub) for name, sub in out[key].items()}
    for key in _SUBSCHEMA_LISTS:
        if isinstance(out.get(key), list):
            out[key] = [translate(sub) for sub in out[key]]
    for key in ("items", "additionalProperties", "not"):
        if isinstance(out.get(key), Mapping):
            out[key] = translate(out[key])
        elif key == "items" and isinstance(out.get(key), list):
            out[key] = [translate(sub) for sub in out[key]]
    if "discriminator" in out and "oneOf" in out:
        out["anyOf"] = out.pop("oneOf")
    nullable = out.pop("nullable", False) is True
    if not nullable:
        return out
    if "enum" in out and None not in out["enum"]:
        out["enum"] = [*out["enum"], None]
    if "type" in out:
        types = out["type"] if isinstance(out["type"], list) else [out["type"]]
        out["type"] = [*types, "null"] if "null" not in types else types
        return out
    if any(key in out for key in (*_SUBSCHEMA_LISTS, "$ref")):
        return {"anyOf": [{"type": "null"}, out]}
    return out


def translate_document(document: Mapping[str, Any]) -> dict[str, Any]:
    """The whole document with every schema in it translated (components, parameters, request
    bodies, responses); other parts are kept as they are."""
    if not str(document.get("openapi", "")).startswith("3.0."):
        raise ValueError(f"OpenAPI {document.get('openapi')}: only 3.0.x is translated here")
    out = copy.deepcopy(dict(document))
    schemas = out.get("components", {}).get("schemas", {})
    for name in list(schemas):
        schemas[name] = translate(schemas[name])
    for operations in out.get("paths", {}).values():
        for operation in operations.values():
            for parameter in operation.get("parameters", []):
                parameter["schema"] = translate(parameter.get("schema", {}))
            for media in operation.get("requestBody", {}).get("content", {}).values():
                media["schema"] = translate(media.get("schema", {}))
            for response in operation.get("responses", {}).values():
                for media in response.get("content", {}).values():
                    media["schema"] = translate(media.get("schema", {}))
    return out


@functools.cache
def source() -> dict[str, Any]:
    """spec/seam/source.json: the package version the spec was cut from, and what was kept."""
    found: dict[str, Any] = json.loads((SPEC_DIR / "source.json").read_text())
    return found


@functools.cache
def document() -> dict[str, Any]:
    """The pinned document as published (OpenAPI 3.0, untranslated)."""
    found: dict[str, Any] = json.loads((SPEC_DIR / "openapi.json").read_text())
    return found


class Spec:
    """Validators over one OpenAPI 3.0 document (by default the pinned one)."""

    def __init__(self, raw: Mapping[str, Any]) -> None:
        self.raw = raw
        self.translated = translate_document(raw)
        resource = Resource.from_contents(self.translated, default_specification=DRAFT4)
        self._registry: Registry[Any] = Registry().with_resource(DOCUMENT_URI, resource)

    @property
    def paths(self) -> dict[str, Any]:
        paths: dict[str, Any] = self.translated["paths"]
        return paths

    def has_route(self, method: str, path: str) -> bool:
        return method.lower() in self.paths.get(path, {})

    def validator(self, pointer: str) -> Draft4Validator:
        """A validator for the translated schema at JSON pointer `pointer` in the document."""
        return Draft4Validator(
            {"$ref": f"{DOCUMENT_URI}#{pointer}"},
            registry=self._registry,
            format_checker=FormatChecker(),
        )

    def errors(self, pointer: str, instance: Any) -> list[str]:
        """Why `instance` does not match the schema at `pointer` (empty when it does)."""
        found = list(self.validator(pointer).iter_errors(instance))
        return [_describe(error) for error in found]

    # -- responses -------------------------------------------------------------------------

    def response_errors(self, method: str, path: str, status: int, body: Any) -> list[str]:
        """Why `body` is not a `status` answer of `method path` as the spec describes it."""
        operation = self.paths.get(path, {}).get(method.lower())
        if operation is None:
            return [f"the spec has no {method.upper()} {path}"]
        response = operation.get("responses", {}).get(str(status))
        if response is None:
            return [f"the spec gives {method.upper()} {path} no {status} answer"]
        if "application/json" not in response.get("content", {}):
            return [f"the spec gives the {status} answer of {path} no JSON body"]
        where = ("paths", path, method.lower(), "responses", str(status), "content")
        return self.errors(_pointer(*where, "application/json", "schema"), body)

    # -- requests --------------------------------------------------------------------------

    def request_schema_pointer(self, path: str) -> str | None:
        """Where the route's request schema is: the POST body's (the SDK's GET sends the same
        fields as a query, which the GET operation does not always list as parameters)."""
        post = self.paths.get(path, {}).get("post", {})
        if "application/json" in post.get("requestBody", {}).get("content", {}):
            where = ("paths", path, "post", "requestBody", "content")
            return _pointer(*where, "application/json", "schema")
        return None

    def request_properties(self, path: str) -> dict[str, Any]:
        """Every field the route's request schema names (across allOf/oneOf/anyOf), with its
        schema; from the GET parameters when there is no POST body."""
        pointer = self.request_schema_pointer(path)
        if pointer is None:
            parameters = self.paths.get(path, {}).get("get", {}).get("parameters", [])
            return {p["name"]: p.get("schema", {}) for p in parameters if p.get("in") == "query"}
        return dict(_properties(_resolve_pointer(self.translated, pointer)))

    def request_errors(
        self, method: str, path: str, query: Mapping[str, list[str]], body: Any
    ) -> list[str]:
        """Why a request (a GET's query, or a POST's JSON body) is not one the spec accepts."""
        if not self.has_route(method, path):
            return [f"the spec has no {method.upper()} {path}"]
        properties = self.request_properties(path)
        if method.upper() == "GET":
            fields = decode_query(query, properties)
        elif isinstance(body, Mapping):
            fields = dict(body)
        elif body is None and not query:
            fields = {}
        else:
            return [f"{method.upper()} {path}: the body is not a JSON object"]
        unknown = sorted(set(fields) - set(properties))
        problems = [f"{path}: the spec has no parameter {name!r}" for name in unknown]
        pointer = self.request_schema_pointer(path)
        if pointer is not None:
            problems += self.errors(pointer, fields)
        else:
            operation = self.paths[path][method.lower()]
            for parameter in operation.get("parameters", []):
                name = parameter["name"]
                if parameter.get("required") and name not in fields:
                    problems.append(f"{path}: required parameter {name!r} is missing")
        return problems

    # -- events ----------------------------------------------------------------------------

    def event_variants(self, event_type: str) -> list[str]:
        """Pointers to the variants of the `event` schema that describe `event_type` (the spec
        may list a type more than once)."""
        event = self.translated["components"]["schemas"]["event"]
        key = "anyOf" if "anyOf" in event else "oneOf"
        found = []
        for index, variant in enumerate(event[key]):
            wanted = variant.get("properties", {}).get("event_type", {})
            values = wanted.get("enum", [wanted["const"]] if "const" in wanted else [])
            if event_type in values:
                found.append(f"/components/schemas/event/{key}/{index}")
        return found

    def event_errors(self, event: Any) -> list[str]:
        """Why `event` is not a Seam event: empty when at least one variant of its type
        validates it."""
        event_type = event.get("event_type") if isinstance(event, Mapping) else None
        if not isinstance(event_type, str):
            return ["the event has no event_type"]
        variants = self.event_variants(event_type)
        if not variants:
            return [f"the spec has no event of type {event_type!r}"]
        problems: list[str] = []
        for pointer in variants:
            errors = self.errors(pointer, event)
            if not errors:
                return []
            problems += [f"{event_type} ({pointer}): {error}" for error in errors]
        return problems


@functools.cache
def pinned() -> Spec:
    """Validators over spec/seam/openapi.json."""
    return Spec(document())


def decode_query(query: Mapping[str, list[str]], properties: Mapping[str, Any]) -> dict[str, Any]:
    """A GET query as the JSON fields it stands for, the way the `seam` SDK encodes them:
    an array is its key repeated (or `key=` when empty), numbers and booleans are text.
    The SDK's own `_strict=true` is left out."""
    fields: dict[str, Any] = {}
    for name, values in query.items():
        if SDK_QUERY_PARAMETERS.get(name) is not None and values == [SDK_QUERY_PARAMETERS[name]]:
            continue
        schema = properties.get(name, {})
        if _types(schema) == {"array"}:
            items = schema.get("items", {})
            fields[name] = [_scalar(v, items) for v in values if v != ""]
        elif len(values) == 1:
            fields[name] = _scalar(values[0], schema)
        else:
            fields[name] = list(values)  # one value given many times: the schema says no
    return fields


def _scalar(text: str, schema: Mapping[str, Any]) -> Any:
    types = _types(schema)
    try:
        if "integer" in types and text.lstrip("-").isdigit():
            return int(text)
        if "number" in types:
            return float(text)
    except ValueError:
        return text
    if "boolean" in types and text in ("true", "false"):
        return text == "true"
    return text


def _types(schema: Mapping[str, Any]) -> set[str]:
    kind = schema.get("type")
    if isinstance(kind, str):
        return {kind}
    if isinstance(kind, list):
        return {k for k in kind if k != "null"}
    found: set[str] = set()
    for key in _SUBSCHEMA_LISTS:
        for sub in schema.get(key, []):
            found |= _types(sub)
    return found


def _properties(schema: Mapping[str, Any]) -> Iterable[tuple[str, Any]]:
    yield from schema.get("properties", {}).items()
    for key in _SUBSCHEMA_LISTS:
        for sub in schema.get(key, []):
            yield from _properties(sub)


def _pointer(*keys: str) -> str:
    """The JSON pointer to document[keys[0]][keys[1]]... (keys such as "/events/list" or
    "application/json" escaped)."""
    return "".join("/" + key.replace("~", "~0").replace("/", "~1") for key in keys)


def _resolve_pointer(document: Any, pointer: str) -> Any:
    found = document
    for part in pointer.split("/")[1:]:
        key = part.replace("~1", "/").replace("~0", "~")
        found = found[int(key)] if isinstance(found, list) else found[key]
    return found


def _describe(error: ValidationError) -> str:
    """One line per failure: where, and why. For a failed oneOf/anyOf, the reasons of the
    variant meant (the one whose enum-pinned fields, such as event_type or status, match and
    that fails least)."""
    if not error.context:
        return f"{error.json_path}: {error.message[:300]}"
    by_variant: dict[Any, list[ValidationError]] = {}
    for sub in error.context:
        by_variant.setdefault(sub.schema_path[0], []).append(sub)
    meant = [
        errors
        for errors in by_variant.values()
        if not any(e.validator in ("enum", "const") and len(e.relative_path) == 1 for e in errors)
    ]
    if not meant:
        closest = best_match(error.context)
        return f"{closest.json_path}: {closest.message[:300]}"
    return "; ".join(_describe(sub) for sub in min(meant, key=len))
