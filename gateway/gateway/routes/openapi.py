"""An OpenAPI document that generated clients can use without hand edits.

The multipart routes read their body as a stream (see `uploads.py`), so their request bodies are
declared here from the named form models: file fields as `format: binary` (FastAPI's 3.1 output
would say `contentMediaType` only, which generators read as text), optional fields without a
`null` branch (optional already means "not required"), and every schema a named component.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel

from gateway.protocol import BINARY


def multipart_schema(model: type[BaseModel]) -> dict[str, Any]:
    """The model's JSON schema made fit for multipart: binary files, no null branches."""
    schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
    for prop in schema["properties"].values():
        variants = prop.pop("anyOf", None)
        if variants:
            kept = [v for v in variants if v.get("type") != "null"]
            if len(kept) == 1:
                prop.update(kept[0])
            else:
                prop["anyOf"] = kept
        if prop.get("format") == "binary" or prop.get("contentMediaType"):
            prop.pop("contentMediaType", None)
            prop.pop("contentEncoding", None)
            prop.update(BINARY)
        if "default" in prop and prop["default"] is None:
            del prop["default"]
    return schema


def multipart_body(model: type[BaseModel]) -> dict[str, Any]:
    """`openapi_extra` for a route whose multipart body is `model`."""
    return {
        "requestBody": {
            "required": True,
            "content": {
                "multipart/form-data": {
                    "schema": {"$ref": f"#/components/schemas/{model.__name__}"}
                }
            },
        }
    }


def install_openapi(app: FastAPI, forms: list[type[BaseModel]]) -> None:
    """Generate the document once, with the form models added as named components."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = get_openapi(
                title=app.title,
                version=app.version,
                summary=app.summary,
                routes=app.routes,
                servers=[{"url": "/", "description": "This gateway."}],
            )
            components = document.setdefault("components", {}).setdefault("schemas", {})
            for form in forms:
                schema = multipart_schema(form)
                components.update(schema.pop("$defs", {}))
                components[form.__name__] = schema
            app.openapi_schema = document
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
