#!/usr/bin/env python3
"""Runs the examples of docs/mapping.md as tests (jq's man.test idea).

An example is a ```yaml block (either `expr: ...` or a `map:` with an optional `schema:`)
followed by a ```json input block and a ```json expected block (or ```text `error: ...`).
The script writes a config with one flow per map example, a .test file with every case, the
```lua blocks as the Lua file, runs `erpsync test`, and checks that every example ran.
Usage: doc_examples.py ERPSYNC docs/mapping.md
"""
import os
import re
import subprocess
import sys
import tempfile

erpsync, doc = sys.argv[1], sys.argv[2]
text = open(doc, encoding="utf-8").read()
blocks = re.findall(r"```(\w+)\n(.*?)```", text, re.S)

lua = "\n".join(b for lang, b in blocks if lang == "lua")
flows, cases = [], []
i = 0
while i < len(blocks):
    lang, body = blocks[i]
    if lang != "yaml" or i + 2 >= len(blocks):
        i += 1
        continue
    (l2, inp), (l3, exp) = blocks[i + 1], blocks[i + 2]
    if l2 != "json" or l3 not in ("json", "text"):
        i += 1
        continue
    inp = " ".join(inp.split("\n")).strip()
    exp = exp.strip() if l3 == "text" else " ".join(exp.split("\n")).strip()
    n = len(cases) + 1
    if body.startswith("expr:"):
        cases.append(f"# example {n}\nnow: 2026-06-15T12:00:00Z\n{body.strip()}\n{inp}\n{exp}\n")
    else:
        name = f"doc{n}"
        indented = "".join("    " + line + "\n" for line in body.rstrip().split("\n"))
        flows.append(
            f"  {name}:\n    entity: customer\n    from: crm\n    to: erp\n"
            f"    trigger: {{poll: 1m}}\n{indented}")
        cases.append(f"# example {n}\nflow: {name}\nnow: 2026-06-15T12:00:00Z\n{inp}\n{exp}\n")
    i += 3

with tempfile.TemporaryDirectory() as tmp:
    cfg = os.path.join(tmp, "docs.yaml")
    with open(os.path.join(tmp, "docs.lua"), "w", encoding="utf-8") as f:
        f.write(lua)
    with open(cfg, "w", encoding="utf-8") as f:
        f.write("lua: docs.lua\n"
                "systems: {crm: {connector: memory}, erp: {connector: memory}}\n"
                "tables:\n"
                "  countries: {Germany: DE, France: FR, \"United States\": US, "
                "\"United Kingdom\": GB}\n"
                "  payment_terms: {\"Net 30\": NT30, \"Net 60\": NT60}\n"
                "entities: {customer: {objects: {crm: Account, erp: Customer}}}\n"
                "flows:\n" + "".join(flows))
    tests = os.path.join(tmp, "docs.test")
    with open(tests, "w", encoding="utf-8") as f:
        f.write("\n".join(cases))
    r = subprocess.run([erpsync, "test", cfg, tests], capture_output=True, text=True)
    sys.stdout.write(r.stdout)
    sys.stderr.write(r.stderr)
    want = f"{len(cases)} passed, 0 failed"
    if r.returncode != 0 or want not in r.stdout:
        print(f"doc examples: expected '{want}'", file=sys.stderr)
        sys.exit(1)
    print(f"doc examples: all {len(cases)} examples of {doc} pass")
