#!/usr/bin/python3
"""demo-app: the managed service of slotd's tests and demo.

This file owns a tiny HTTP service whose version and behaviour are set by a
file in the slot it runs from, so a test can build "good" and "bad" packages
without writing code.

Endpoints:
    GET /health          200 {"status":"ok"}
    GET /api/v1/version  200 {"codebase_version": "<version>"}
    anything else        404

Configuration: app.ini next to this file (the path as invoked, so
<root>/current/demo-app.py reads <root>/current/app.ini), or the file named
by -c/--config or DEMO_APP_CONFIG. Plain "key = value" lines; "#" and ";"
start comments; [section] lines are ignored:

    version = 1.1.0
    behaviour = healthy
    port = 8080

version    what /api/v1/version reports. Without it, the version of the
           slot.ini beside the file ([package] version = ...), else 0.0.0.
port       TCP port on 127.0.0.1 when not socket-activated [8080].
bind       address when not socket-activated [127.0.0.1].
behaviour  one of:
    healthy           serve as above
    exit-at-start     exit 1 before serving
    health-500        /health answers 500 {"status":"failing"}
    wrong-version     /api/v1/version reports "0.0.0-wrong"
    crash-after=N     serve normally, exit 1 after N seconds (float)
    hang-at-start     never serve, never exit (until SIGTERM)

systemd: takes a listening socket from socket activation (LISTEN_FDS and
LISTEN_PID, fd 3, Accept=no), else binds bind:port itself; sends READY=1
to NOTIFY_SOCKET once it serves, so Type=notify works too. Python 3
standard library only.
"""

import http.server
import json
import os
import socket
import sys
import threading
import time

SD_LISTEN_FDS_START = 3


def read_kv(path):
    """key = value lines of an INI-like file, sections ignored."""
    values = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if not line or line[0] in "#;[" or "=" not in line:
                continue
            key, value = line.split("=", 1)
            value = value.split(" ;", 1)[0].split(" #", 1)[0]
            values[key.strip().lower()] = value.strip()
    return values


def load_config(argv):
    path = os.environ.get("DEMO_APP_CONFIG")
    if len(argv) >= 3 and argv[1] in ("-c", "--config"):
        path = argv[2]
    here = os.path.dirname(os.path.abspath(argv[0]))
    if not path:
        path = os.path.join(here, "app.ini")
    try:
        conf = read_kv(path)
    except OSError as e:
        sys.exit(f"demo-app: cannot read config {path}: {e.strerror}")
    if "version" not in conf:
        try:
            conf["version"] = read_kv(os.path.join(os.path.dirname(path), "slot.ini"))["version"]
        except (OSError, KeyError):
            conf["version"] = "0.0.0"
    conf.setdefault("behaviour", "healthy")
    conf.setdefault("bind", "127.0.0.1")
    try:
        conf["port"] = int(conf.get("port", "8080"))
    except ValueError:
        sys.exit(f"demo-app: {path}: bad port: {conf['port']}")
    return conf


def activated_socket():
    """The socket systemd passed us, or None."""
    try:
        if int(os.environ.get("LISTEN_PID", "0")) != os.getpid():
            return None
        nfds = int(os.environ.get("LISTEN_FDS", "0"))
    except ValueError:
        return None
    for var in ("LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"):
        os.environ.pop(var, None)
    if nfds < 1:
        return None
    return socket.socket(fileno=SD_LISTEN_FDS_START)


def sd_notify(state):
    addr = os.environ.get("NOTIFY_SOCKET")
    if not addr:
        return
    if addr[0] == "@":
        addr = "\0" + addr[1:]
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
            s.connect(addr)
            s.sendall(state.encode())
    except OSError as e:
        print(f"demo-app: sd_notify failed: {e}", file=sys.stderr)


class Handler(http.server.BaseHTTPRequestHandler):
    server_version = "demo-app"
    protocol_version = "HTTP/1.1"

    def reply(self, code, body):
        data = json.dumps(body, separators=(",", ":")).encode() + b"\n"
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        conf = self.server.conf
        path = self.path.split("?", 1)[0]
        if path == "/health":
            if conf["behaviour"] == "health-500":
                self.reply(500, {"status": "failing"})
            else:
                self.reply(200, {"status": "ok"})
        elif path == "/api/v1/version":
            version = conf["version"]
            if conf["behaviour"] == "wrong-version":
                version = "0.0.0-wrong"
            self.reply(200, {"codebase_version": version})
        else:
            self.reply(404, {"error": "not found"})

    def log_message(self, format, *args):
        pass


def main(argv):
    conf = load_config(argv)
    behaviour = conf["behaviour"]
    crash_after = None
    if behaviour.startswith("crash-after="):
        try:
            crash_after = float(behaviour.split("=", 1)[1])
        except ValueError:
            sys.exit(f"demo-app: bad behaviour: {behaviour}")
    elif behaviour not in ("healthy", "exit-at-start", "health-500",
                           "wrong-version", "hang-at-start"):
        sys.exit(f"demo-app: unknown behaviour: {behaviour}")

    if behaviour == "exit-at-start":
        print(f"demo-app {conf['version']}: exit-at-start", file=sys.stderr)
        return 1
    if behaviour == "hang-at-start":
        print(f"demo-app {conf['version']}: hang-at-start", file=sys.stderr)
        while True:
            time.sleep(3600)

    sock = activated_socket()
    try:
        server = http.server.ThreadingHTTPServer(
            (conf["bind"], conf["port"]), Handler,
            bind_and_activate=sock is None)
    except OSError as e:
        sys.exit(f"demo-app: cannot listen on {conf['bind']}:{conf['port']}: {e.strerror}")
    server.daemon_threads = True
    if sock is not None:
        server.socket.close()
        server.socket = sock
        where = "socket activation"
    else:
        where = f"{conf['bind']}:{conf['port']}"
    server.conf = conf

    if crash_after is not None:
        def crash():
            print(f"demo-app {conf['version']}: crashing as told", file=sys.stderr)
            os._exit(1)
        threading.Timer(crash_after, crash).start()

    print(f"demo-app {conf['version']} ({behaviour}) serving on {where}",
          file=sys.stderr, flush=True)
    sd_notify("READY=1")
    server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
