#!/usr/bin/env python3
"""Converts CustomResourceDefinitions into strict JSON Schemas for offline checks.

    crd2jsonschema.py OUT_DIR CRD.yaml [CRD.yaml ...]

Writes OUT_DIR/<group>/<kind>_<version>.json (lower-case kind) for every served
version, from its openAPIV3Schema, changed the way the API server reads it:
- an object with `properties` and neither `additionalProperties` nor
  `x-kubernetes-preserve-unknown-fields` rejects unknown fields (the API server
  prunes them silently, which hides typos: better refused here);
- `nullable: true` also admits null;
- `apiVersion` and `kind` are pinned to the CRD's own;
- Go's inline case-insensitive flag `(?i)`, which JSON Schema's regex dialect
  lacks, is spelled out as letter classes (`(?i)warn` becomes `[wW][aA][rR][nN]`);
- descriptions are dropped to keep the vendored files small.
Only PyYAML is needed (the check's venv has it).
"""
import json
import pathlib
import sys

import yaml


def case_insensitive(pattern):
    """Drops `(?i)` and matches each letter (outside a [...] class) in both cases."""
    out, in_class, escaped = [], False, False
    for char in pattern.replace("(?i)", ""):
        if escaped:
            out.append(char)
            escaped = False
        elif char == "\\":
            out.append(char)
            escaped = True
        elif char == "[":
            in_class = True
            out.append(char)
        elif char == "]":
            in_class = False
            out.append(char)
        elif char.isalpha() and char.isascii() and not in_class:
            out.append(f"[{char.lower()}{char.upper()}]")
        else:
            out.append(char)
    return "".join(out)


def strict(node):
    if isinstance(node, list):
        return [strict(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = {}
    for key, value in node.items():
        if key == "description":
            continue
        if key in ("properties", "patternProperties", "definitions"):
            out[key] = {name: strict(sub) for name, sub in value.items()}
        elif key == "pattern" and isinstance(value, str) and "(?i)" in value:
            out[key] = case_insensitive(value)
        else:
            out[key] = strict(value)
    if (
        "properties" in out
        and "additionalProperties" not in out
        and not out.get("x-kubernetes-preserve-unknown-fields")
    ):
        out["additionalProperties"] = False
    if out.get("nullable") and isinstance(out.get("type"), str):
        out["type"] = [out["type"], "null"]
    return out


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    out_dir = pathlib.Path(sys.argv[1])
    for path in sys.argv[2:]:
        for crd in yaml.safe_load_all(pathlib.Path(path).read_text()):
            if not crd or crd.get("kind") != "CustomResourceDefinition":
                continue
            spec = crd["spec"]
            group, kind = spec["group"], spec["names"]["kind"]
            for version in spec["versions"]:
                if not version.get("served", True):
                    continue
                schema = strict(version["schema"]["openAPIV3Schema"])
                props = schema.setdefault("properties", {})
                props["apiVersion"] = {"type": "string", "enum": [f"{group}/{version['name']}"]}
                props["kind"] = {"type": "string", "enum": [kind]}
                schema["required"] = sorted(set(schema.get("required", [])) | {"apiVersion", "kind", "metadata"})
                schema["$schema"] = "http://json-schema.org/draft-07/schema#"
                schema["title"] = f"{kind} {group}/{version['name']}"
                target = out_dir / group / f"{kind.lower()}_{version['name']}.json"
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_text(json.dumps(schema, indent=1, sort_keys=True) + "\n")
                print(target)


if __name__ == "__main__":
    main()
