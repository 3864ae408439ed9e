#!/usr/bin/env python3
"""Writes a mongoexport-style file (relaxed extended JSON, one document per line) of the
original service's `portfolio` collection, for import tests and timings.

    scripts/make-sample-export.py 100000 > sample.json
"""
import json
import random
import sys
from datetime import datetime, timedelta, timezone

count = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
rng = random.Random(42)
words = ["Tech", "Growth", "Value", "Income", "Global", "Emerging", "Dividend", "Bond", "Equity", "Balanced"]
start = datetime(2019, 1, 1, tzinfo=timezone.utc)
process = rng.getrandbits(40)
for i in range(count):
    created = start + timedelta(milliseconds=rng.randrange(0, 6 * 365 * 24 * 3600 * 1000))
    oid = f"{int(created.timestamp()):08x}{process:010x}{i:06x}"
    doc = {
        "_id": {"$oid": oid},
        "name": f"{rng.choice(words)} {rng.choice(words)} Fund {i}",
        "dateCreated": {"$date": created.strftime("%Y-%m-%dT%H:%M:%S.") + f"{created.microsecond // 1000:03d}Z"},
        "version": rng.randint(1, 5),
    }
    sys.stdout.write(json.dumps(doc, separators=(",", ":")) + "\n")
