"""What is generated from the routes is current: the API reference in `docs/api.md`.

(The SPA's `schema.d.ts` is checked the same way by `npm run check:api` in the frontend suite.)
"""

from __future__ import annotations

from pathlib import Path

import pytest

from app.devtools import api_reference

REFERENCE = Path(__file__).resolve().parents[2] / "docs" / "api.md"


def test_the_api_reference_matches_the_routes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATA_DIR", str(tmp_path))
    written = REFERENCE.read_text(encoding="utf-8")
    assert written == api_reference.current(), "docs/api.md is stale: run `make docs`"


def test_the_reference_names_every_route_and_links_every_schema() -> None:
    """The renderer leaves nothing out: each operation and each schema it links has a heading."""
    spec = {
        "paths": {
            "/api/things/{id}": {
                "get": {
                    "tags": ["things"],
                    "summary": "Get Thing",
                    "parameters": [
                        {
                            "name": "id",
                            "in": "path",
                            "required": True,
                            "schema": {"type": "integer"},
                        }
                    ],
                    "responses": {
                        "200": {
                            "content": {
                                "application/json": {
                                    "schema": {"$ref": "#/components/schemas/Thing"}
                                }
                            }
                        }
                    },
                },
                "delete": {"tags": ["things"], "responses": {"204": {}}},
            }
        },
        "components": {
            "schemas": {
                "Thing": {
                    "properties": {
                        "id": {"type": "integer"},
                        "tags": {"type": "array", "items": {"type": "string"}},
                        "kind": {"anyOf": [{"enum": ["a", "b"]}, {"type": "null"}]},
                    },
                    "required": ["id"],
                }
            }
        },
    }
    text = api_reference.render(spec)
    assert "### `GET /api/things/{id}`" in text
    assert "### `DELETE /api/things/{id}`" in text
    assert "Answers: 200 [`Thing`](#thing)" in text
    assert "### Thing" in text
    assert "| `id` | integer | yes |" in text
    assert "| `tags` | array of string | no |" in text
    assert "| `kind` | `a` \\| `b` \\| null | no |" in text
