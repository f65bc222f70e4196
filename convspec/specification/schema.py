"""JSON Schema of the spec language, generated from the pydantic models."""

from __future__ import annotations

import json

from .model import Spec


def schema_json() -> str:
    schema = Spec.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "convspec spec"
    return json.dumps(schema, indent=2, sort_keys=True)
