"""Check a BFF's OpenAPI document with `openapi-spec-validator` from PyPI, and real
responses of its endpoints against the document's response schemas with `jsonschema`
(OpenAPI 3.1 schemas are JSON Schema 2020-12).

Usage: check_openapi.py DOCUMENT [PATH STATUS RESPONSE]... ; prints one JSON object:
{"spec": [errors], "responses": [{"path": ..., "errors": [...]}]}. Exits 0 when it ran.
"""

import json
import sys

import jsonschema
from openapi_spec_validator import validate
from openapi_spec_validator.validation.exceptions import OpenAPIValidationError

document = json.load(open(sys.argv[1]))
spec_errors = []
try:
    validate(document)
except OpenAPIValidationError as error:
    spec_errors.append(str(error).splitlines()[0])

results = []
rest = sys.argv[2:]
for path, status, response in zip(rest[0::3], rest[1::3], rest[2::3]):
    operation = document["paths"][path]["get"]
    schema = operation["responses"][status]["content"]["application/json"]["schema"]
    # Resolve the document's own $refs.
    schema = dict(schema, components=document["components"])
    validator = jsonschema.Draft202012Validator(schema)
    errors = [
        "/".join(str(p) for p in error.absolute_path) + ": " + error.message
        for error in validator.iter_errors(json.load(open(response)))
    ]
    results.append({"path": path, "errors": errors})
print(json.dumps({"spec": spec_errors, "responses": results}))
