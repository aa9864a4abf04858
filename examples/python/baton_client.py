#!/usr/bin/env python3
"""Enqueue a baton plan from Python and follow it to its end, with redis-py only.

    pip install redis
    python3 baton_client.py PLAN.json [--redis-url redis://127.0.0.1:6379] [--prefix baton]

Prints the plan id, then one line per event of the plan. Exit status: 0 when the plan
completes, 1 when it fails, is cancelled, runs out of budget or its document is refused,
2 when the plan file cannot be read.

What baton needs from a client is one LPUSH of the document onto `{baton}:submit` (the prefix
in braces: a Redis Cluster hash tag). Events are published on `baton:events` (and kept per plan
in `baton:{<plan id>}:events`, each with `seq`), so subscribing before the LPUSH misses nothing.
"""
import argparse
import json
import sys
import uuid

import redis

# Event kinds that end a plan, with the exit status each means.
ENDS = {
    "plan_completed": 0,
    "plan_failed": 1,
    "plan_cancelled": 1,
    "plan_budget_exhausted": 1,
    "submission_rejected": 1,
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("plan", help="the plan document (JSON)")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379")
    parser.add_argument("--prefix", default="baton")
    args = parser.parse_args()
    try:
        with open(args.plan) as f:
            doc = json.load(f)
    except (OSError, ValueError) as e:
        print(f"cannot read {args.plan}: {e}", file=sys.stderr)
        return 2
    # Name the plan here, so its events can be told from others'.
    doc.setdefault("plan_id", str(uuid.uuid4()))
    plan = doc["plan_id"]

    r = redis.Redis.from_url(args.redis_url, decode_responses=True)
    events = r.pubsub(ignore_subscribe_messages=True)
    events.subscribe(f"{args.prefix}:events")
    # A follow-up's plan has events already: only those after the submission count.
    first_seq = int(r.hget(f"{args.prefix}:{{{plan}}}:plan", "event_seq") or 0)
    r.lpush(f"{{{args.prefix}}}:submit", json.dumps(doc))
    print(plan, flush=True)

    for message in events.listen():
        event = json.loads(message["data"])
        if event.get("plan_id") != plan or event.get("seq", first_seq) < first_seq:
            continue
        detail = event.get("reason") or event.get("result") or ""
        print(f"{event['at'][11:19]} {event['kind']} {event.get('task_id', '')} {detail}".rstrip(), flush=True)
        if event["kind"] in ENDS:
            return ENDS[event["kind"]]
    return 1


if __name__ == "__main__":
    sys.exit(main())
