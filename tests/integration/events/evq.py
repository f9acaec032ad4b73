#!/usr/bin/env python3
"""evq.py: questions about the collector's log (collector.py's JSON lines).

  evq.py LOG [--from N] [--outcome ok|fail|hang|lost|any] COMMAND [ARG...]

--from N skips the first N log lines (a mark taken before a step);
--outcome keeps the POSTs answered that way (default ok: the delivered ones);
--first keeps only the first of the POSTs that carry the same event id.

Commands:
  types                  one event type per line, in arrival order
  ids                    one event id per line, in arrival order
  count                  the number of POSTs
  show FMT               one line per event: FMT with {type}, {id}, {time},
                         {outcome}, {arrived} and {data.KEY} replaced
  field TYPE KEY         KEY (dotted, e.g. data.to_version) of the first
                         event of TYPE; exit 1 when there is none
  valid WORKER           every event is CloudEvents 1.0 as SPEC section 8
                         says, from /workers/WORKER; prints what is wrong
  duplicates             ids delivered more than once
"""

import calendar
import json
import re
import signal
import sys
import time

TYPES = {
    "worker_agent_started", "worker_update_available", "worker_update_started",
    "worker_update_downloaded", "worker_update_installed", "worker_update_switched",
    "worker_update_completed", "worker_update_failed", "worker_update_rejected",
    "worker_rollback_started", "worker_rollback_completed", "worker_rollback_failed",
    "worker_version_drift", "worker_events_dropped",
}
UUID4 = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$")
SLOTS = {"a", "b"}


def load(path, start, outcome):
    posts = []
    with open(path) as f:
        for n, line in enumerate(f):
            if n < start:
                continue
            entry = json.loads(line)
            if outcome != "any" and entry["outcome"] != outcome:
                continue
            try:
                entry["event"] = json.loads(entry["body"])
            except ValueError:
                entry["event"] = None
            posts.append(entry)
    return posts


def lookup(ev, dotted):
    v = ev
    for part in dotted.split("."):
        if not isinstance(v, dict) or part not in v:
            return None
        v = v[part]
    return v


def fmt(ev, text, entry):
    def repl(m):
        key = m.group(1)
        if key == "outcome":
            return entry["outcome"]
        if key == "arrived":
            return "%.3f" % entry["time"]
        v = lookup(ev, key)
        return "null" if v is None else v if isinstance(v, str) else json.dumps(v)
    return re.sub(r"\{([A-Za-z0-9_.]+)\}", repl, text)


def problems(entry, worker):
    ev = entry["event"]
    if not isinstance(ev, dict):
        return ["the body is not a JSON object: %r" % entry["body"][:200]]
    out = []
    ctype = entry["headers"].get("content-type", "")
    if ctype.split(";")[0].strip() != "application/cloudevents+json":
        out.append("Content-Type is %r" % ctype)
    if entry["path"] != "/events":
        out.append("POSTed to %s" % entry["path"])
    want = {"specversion": "1.0", "source": "/workers/" + worker,
            "datacontenttype": "application/json"}
    for k, v in want.items():
        if ev.get(k) != v:
            out.append("%s is %r, not %r" % (k, ev.get(k), v))
    if not UUID4.match(str(ev.get("id", ""))):
        out.append("id %r is not a UUID v4" % ev.get("id"))
    if ev.get("type") not in TYPES:
        out.append("unknown type %r" % ev.get("type"))
    t = str(ev.get("time", ""))
    if not TIME.match(t):
        out.append("time %r is not RFC 3339 UTC" % t)
    else:
        when = calendar.timegm(time.strptime(t[:19], "%Y-%m-%dT%H:%M:%S"))
        # The event's time is taken before it is delivered, never after.
        if when > entry["time"] + 2:
            out.append("time %s is after its arrival" % t)
    data = ev.get("data")
    if not isinstance(data, dict):
        return out + ["data is not an object"]
    if data.get("worker_id") != worker:
        out.append("data.worker_id is %r" % data.get("worker_id"))
    for k in ("from_slot", "to_slot"):
        if k in data and data[k] not in SLOTS:
            out.append("data.%s is %r" % (k, data[k]))
    typ = ev.get("type")
    if typ == "worker_update_completed":
        d = data.get("duration_ms")
        if not isinstance(d, int) or d < 0:
            out.append("data.duration_ms of worker_update_completed is %r" % d)
    if typ == "worker_update_failed":
        for k in ("error", "phase"):
            if not data.get(k):
                out.append("worker_update_failed without data.%s" % k)
    if typ == "worker_update_rejected" and not data.get("reason"):
        out.append("worker_update_rejected without data.reason")
    if typ == "worker_events_dropped":
        d = data.get("dropped")
        if not isinstance(d, int) or d <= 0:
            out.append("data.dropped of worker_events_dropped is %r" % d)
    return out


def main(argv):
    if len(argv) < 2:
        sys.exit(__doc__)
    path = argv[0]
    args = argv[1:]
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)  # evq ... | head
    start, outcome, first = 0, "ok", False
    while args and args[0].startswith("--"):
        opt = args.pop(0)
        if opt == "--from":
            start = int(args.pop(0))
        elif opt == "--outcome":
            outcome = args.pop(0)
        elif opt == "--first":
            first = True
        else:
            sys.exit("evq.py: unknown option %s" % opt)
    cmd = args.pop(0)
    posts = load(path, start, outcome)
    if first:
        seen = set()
        kept = []
        for p in posts:
            key = p["event"].get("id") if isinstance(p["event"], dict) else None
            if key is None or key not in seen:
                kept.append(p)
            seen.add(key)
        posts = kept
    events = [(p, p["event"] if isinstance(p["event"], dict) else {}) for p in posts]

    if cmd == "types":
        for _, ev in events:
            print(ev.get("type"))
    elif cmd == "ids":
        for _, ev in events:
            print(ev.get("id"))
    elif cmd == "count":
        print(len(events))
    elif cmd == "show":
        for p, ev in events:
            print(fmt(ev, args[0], p))
    elif cmd == "field":
        for _, ev in events:
            if ev.get("type") == args[0]:
                v = lookup(ev, args[1])
                print("null" if v is None else v if isinstance(v, str) else json.dumps(v))
                return 0
        return 1
    elif cmd == "valid":
        bad = 0
        for p, ev in events:
            for msg in problems(p, args[0]):
                print("%s %s: %s" % (ev.get("type"), ev.get("id"), msg))
                bad += 1
        return 1 if bad else 0
    elif cmd == "duplicates":
        seen = {}
        for _, ev in events:
            seen[ev.get("id")] = seen.get(ev.get("id"), 0) + 1
        dup = [i for i, n in seen.items() if n > 1]
        for i in dup:
            print(i)
    else:
        sys.exit("evq.py: unknown command %s" % cmd)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
