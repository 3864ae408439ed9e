#!/usr/bin/env python3
"""Explain output of the MongoDB paging commands (docs/MONGODB.md, "Paging").

Fills a scratch database with 10,000 portfolios and the indexes `portfolio-service migrate`
creates, prints the stages and counters of each command the store sends for a page (and of the
ones it sent before), then drops the database. Needs pymongo (`pip install pymongo`).

    python3 scripts/mongo-explain-paging.py [mongodb://127.0.0.1:27017]
"""
import datetime
import json
import sys

import pymongo

URL = sys.argv[1] if len(sys.argv) > 1 else "mongodb://127.0.0.1:27017"
DB = "paging_explain"
PROJECTION = {"_id": 1, "name": 1, "dateCreated": 1, "version": 1}
NEWEST_FIRST = {"dateCreated": -1, "_id": -1}
OLDEST_FIRST = {"dateCreated": 1, "_id": 1}
SUBSTRING = {"name": {"$regex": "olio 12", "$options": "i"}}


def find(sort, skip):
    return {"find": "portfolio", "filter": {}, "sort": sort, "skip": skip, "limit": 50, "projection": PROJECTION}


def count_documents(query):
    return {"aggregate": "portfolio", "pipeline": [{"$match": query}, {"$group": {"_id": 1, "n": {"$sum": 1}}}],
            "cursor": {}}


CASES = [
    ("first page: skip 0", find(NEWEST_FIRST, 0)),
    ("offset 4950 (the deepest a window walks): forward, skip 4950", find(NEWEST_FIRST, 4950)),
    ("last page, offset 9950, before: forward, skip 9950", find(NEWEST_FIRST, 9950)),
    ("last page, offset 9950, now: backwards window, skip 0", find(OLDEST_FIRST, 0)),
    ("total, unfiltered, now: count {} (estimatedDocumentCount)", {"count": "portfolio"}),
    ("total, substring 'olio 12', now: count with query", {"count": "portfolio", "query": SUBSTRING}),
    ("total, unfiltered, before: countDocuments {}", count_documents({})),
    ("total, substring 'olio 12', before: countDocuments", count_documents(SUBSTRING)),
]

COUNTERS = ("indexName", "direction", "keysExamined", "docsExamined", "nReturned", "skipAmount", "nCounted",
            "filter")


def stages(stage, depth=0):
    while stage:
        shown = {k: v for k, v in stage.items() if k in COUNTERS}
        print("  " * depth + stage.get("stage", "?"), json.dumps(shown, default=str))
        stage, depth = stage.get("inputStage"), depth + 1


def main():
    client = pymongo.MongoClient(URL, serverSelectionTimeoutMS=5000)
    db = client[DB]
    db.drop_collection("portfolio")
    start = datetime.datetime(2024, 1, 1)
    db.portfolio.insert_many(
        [{"name": f"Portfolio {i}", "dateCreated": start + datetime.timedelta(seconds=i), "version": 1}
         for i in range(10_000)])
    db.portfolio.create_index([("name", 1), ("dateCreated", -1)], name="name_1_dateCreated_-1")
    db.portfolio.create_index([("dateCreated", -1), ("_id", -1)], name="pfs_dateCreated_-1__id_-1")
    try:
        print(f"server {client.server_info()['version']} at {URL}; 10,000 documents")
        for title, command in CASES:
            explained = db.command({"explain": command, "verbosity": "executionStats"})
            print(f"\n# {title}\n{json.dumps(command)}")
            for part in explained.get("stages", [explained]):
                if "$cursor" in part:
                    part = part["$cursor"]
                if "executionStats" in part:
                    stats = part["executionStats"]
                    print(f"keys examined {stats['totalKeysExamined']}, documents examined "
                          f"{stats['totalDocsExamined']}")
                    stages(stats["executionStages"])
                else:
                    print(next(iter(part)), "stage")
    finally:
        client.drop_database(DB)


if __name__ == "__main__":
    main()
