"""Validate config files against the checked-in JSON Schemas with the `jsonschema`
package from PyPI (an independent validator, as an editor would use).

Usage: check_config_schemas.py SCHEMA FILE... ; prints one JSON line per file:
{"file": ..., "errors": [...]}. Exits 0 when it ran, whatever it found.
"""

import json
import sys

import jsonschema
import yaml

schema = json.load(open(sys.argv[1]))
validator = jsonschema.Draft202012Validator(schema)
for path in sys.argv[2:]:
    document = yaml.safe_load(open(path))
    errors = [
        "/".join(str(p) for p in error.absolute_path) + ": " + error.message
        for error in validator.iter_errors(document)
    ]
    print(json.dumps({"file": path, "errors": errors}))
