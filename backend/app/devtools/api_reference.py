"""The API reference (`docs/api.md`), written from the app's own OpenAPI document.

`make docs` runs this; `tests/test_docs.py` fails when the committed file differs from what it
writes, so the reference cannot drift from the routes. Usage: `python -m app.devtools.api_reference
[output]` (default: print).
"""

from __future__ import annotations

import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

METHODS = ("get", "post", "put", "patch", "delete")
HEADER = """# API reference

Written from the server's OpenAPI document by `make docs` — do not edit; a test fails when this
file is stale. The same document is served at `/openapi.json`, with Swagger UI at `/docs`.

Conventions: `/api` routes take `Authorization: Bearer <access token>` (from `POST
/api/auth/login`); routes under a tag starting with `admin-` need an admin. `/v1` routes take an
API key (`Authorization: Bearer sk-…`) and answer errors in OpenAI's envelope; `/api` errors are
`{"detail": …, "code": …}`. See the [guides](README.md) for what each part does.
"""


def _ref_name(schema: dict[str, Any]) -> str | None:
    ref = schema.get("$ref")
    return ref.rsplit("/", 1)[-1] if isinstance(ref, str) else None


def type_of(schema: dict[str, Any]) -> str:
    """A short type for a schema: `Name` for a reference, `array of X`, `a | b` for unions."""
    name = _ref_name(schema)
    if name:
        return f"[`{name}`](#{name.lower()})"
    for union in ("anyOf", "oneOf"):
        if union in schema:
            parts = [type_of(s) for s in schema[union]]
            return " \\| ".join(dict.fromkeys(parts))
    if "allOf" in schema and len(schema["allOf"]) == 1:
        return type_of(schema["allOf"][0])
    kind = schema.get("type")
    if kind == "array":
        return f"array of {type_of(schema.get('items', {}))}"
    if "enum" in schema:
        return " \\| ".join(f"`{value}`" for value in schema["enum"])
    if "const" in schema:
        return f"`{schema['const']}`"
    if kind == "object" and "additionalProperties" in schema:
        extra = schema["additionalProperties"]
        return f"map of {type_of(extra) if isinstance(extra, dict) else 'any'}"
    if isinstance(kind, str):
        fmt = schema.get("format")
        return f"{kind} ({fmt})" if fmt else kind
    return "any"


def _cell(text: str | None) -> str:
    return " ".join((text or "").split()).replace("|", "\\|")


def _body(operation: dict[str, Any]) -> str | None:
    body = operation.get("requestBody")
    if not body:
        return None
    parts = []
    for media, content in body.get("content", {}).items():
        parts.append(f"{type_of(content.get('schema', {}))} (`{media}`)")
    return ", ".join(parts)


def _answers(operation: dict[str, Any]) -> str:
    parts = []
    for status, response in operation.get("responses", {}).items():
        content = response.get("content") or {}
        kinds = [
            type_of(c["schema"]) if c.get("schema") else f"`{media}`"
            for media, c in content.items()
        ]
        schemas = [k for k in kinds if k not in ("any", "`application/json`")]
        parts.append(f"{status} {', '.join(schemas)}".strip())
    return "; ".join(parts)


def _operation(method: str, path: str, op: dict[str, Any]) -> list[str]:
    lines = [f"### `{method.upper()} {path}`", ""]
    summary = op.get("summary")
    description = (op.get("description") or "").strip()
    if description:
        lines += [description, ""]
    elif summary:
        lines += [f"{summary}.", ""]
    params = op.get("parameters") or []
    if params:
        lines += ["| parameter | in | type | required | description |", "|---|---|---|---|---|"]
        for p in params:
            lines.append(
                f"| `{p['name']}` | {p['in']} | {type_of(p.get('schema', {}))} | "
                f"{'yes' if p.get('required') else 'no'} | {_cell(p.get('description'))} |"
            )
        lines.append("")
    body = _body(op)
    if body:
        lines += [f"Body: {body}", ""]
    lines += [f"Answers: {_answers(op)}", ""]
    return lines


def _schema(name: str, schema: dict[str, Any]) -> list[str]:
    lines = [f"### {name}", ""]
    description = (schema.get("description") or "").strip()
    if description:
        lines += [description, ""]
    properties = schema.get("properties") or {}
    if not properties:
        lines += [f"Type: {type_of(schema)}", ""]
        return lines
    required = set(schema.get("required") or [])
    lines += ["| field | type | required | description |", "|---|---|---|---|"]
    for field, spec in properties.items():
        lines.append(
            f"| `{field}` | {type_of(spec)} | {'yes' if field in required else 'no'} | "
            f"{_cell(spec.get('description'))} |"
        )
    lines.append("")
    return lines


def render(spec: dict[str, Any]) -> str:
    by_tag: dict[str, list[tuple[str, str, dict[str, Any]]]] = defaultdict(list)
    for path, item in spec.get("paths", {}).items():
        for method in METHODS:
            if method in item:
                op = item[method]
                by_tag[(op.get("tags") or ["other"])[0]].append((method, path, op))
    lines = [HEADER, "## Contents", ""]
    tags = sorted(by_tag)
    lines += [f"- [{tag}](#{tag}) ({len(by_tag[tag])})" for tag in tags]
    lines += ["- [Schemas](#schemas)", ""]
    for tag in tags:
        lines += [f"## {tag}", ""]
        for method, path, op in by_tag[tag]:
            lines += _operation(method, path, op)
    lines += ["## Schemas", ""]
    for name, schema in sorted(spec.get("components", {}).get("schemas", {}).items()):
        lines += _schema(name, schema)
    return "\n".join(lines).rstrip() + "\n"


def current() -> str:
    """The reference for the routes as they are now."""
    from app.main import create_app

    return render(create_app().openapi())


def main() -> None:
    text = current()
    if len(sys.argv) > 1:
        Path(sys.argv[1]).write_text(text, encoding="utf-8")
        print(f"{sys.argv[1]} written")
    else:
        sys.stdout.write(text)


if __name__ == "__main__":
    main()
