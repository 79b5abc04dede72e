"""Fails unless every operation of the document answered 2xx at least once
during the schemathesis run, read from the server's own request counters
(`/metrics`). Without this, a run whose token never worked would pass on
401s alone, having checked no success answer against its schema.

Usage: python coverage.py BASE_URL openapi/openapi.json
"""

import json
import re
import sys
import urllib.request

base_url, document = sys.argv[1], sys.argv[2]
with urllib.request.urlopen(f"{base_url}/metrics", timeout=30) as response:
    metrics = response.read().decode()
succeeded = set()
for line in metrics.splitlines():
    if not line.startswith("sessiond_http_requests_total{"):
        continue
    labels = dict(re.findall(r'(\w+)="([^"]*)"', line))
    if labels.get("status", "").startswith("2") and float(line.rsplit(" ", 1)[1]) > 0:
        succeeded.add((labels["method"], labels["route"]))

with open(document) as f:
    paths = json.load(f)["paths"]
operations = [(method.upper(), path) for path, item in paths.items() for method in item]
missing = [f"{method} {path}" for method, path in operations if (method, path) not in succeeded]
if missing:
    print("these operations never answered 2xx during the run:", *missing, sep="\n  ", file=sys.stderr)
    sys.exit(1)
print(f"every one of the {len(operations)} operations answered 2xx at least once")
