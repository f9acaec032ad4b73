#!/usr/bin/env python3
"""collector.py: a stand-in coordinator for the integration tests.

It records every POST (path, headers, body, what it answered) as one JSON
line in --log, and serves GET requests from the files under --root (the
signed manifest and the packages), so one process plays the whole
coordinator on a loopback port.

How it answers a POST is read from the --control file before each request
(a missing or empty file means "ok"):

  ok     answer 202 (the default)
  fail   answer 500
  hang   accept the request and never answer (the connection is dropped,
         unanswered, once the mode changes)
  lose   read and record the request, then drop the connection without
         answering, once; the control file is then set back to "ok"

The same modes can be set over HTTP: POST /_control/<mode>.

Each log line: {"seq", "time" (Unix seconds, float), "path", "headers",
"body" (text), "outcome" ("ok", "fail", "hang" or "lost")}.

The port it listens on (--port, default 0: any free one) is written to
--port-file once it accepts connections.
"""

import argparse
import json
import os
import socket
import sys
import threading
import time
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

MODES = ("ok", "fail", "hang", "lose")


class State:
    def __init__(self, log_path, control_path):
        self.log_path = log_path
        self.control_path = control_path
        self.lock = threading.Lock()
        self.seq = 0

    def mode(self):
        try:
            with open(self.control_path) as f:
                text = f.read().strip()
        except FileNotFoundError:
            return "ok"
        return text if text in MODES else "ok"

    def set_mode(self, mode):
        tmp = self.control_path + ".tmp"
        with open(tmp, "w") as f:
            f.write(mode + "\n")
        os.replace(tmp, self.control_path)

    def record(self, entry):
        with self.lock:
            self.seq += 1
            entry = dict(entry, seq=self.seq)
            with open(self.log_path, "a") as f:
                f.write(json.dumps(entry, sort_keys=True) + "\n")
                f.flush()
                os.fsync(f.fileno())


class Handler(SimpleHTTPRequestHandler):
    server_version = "collector/1"
    protocol_version = "HTTP/1.1"  # keep-alive, like a real coordinator

    def log_message(self, fmt, *args):
        pass  # the JSON log is the record

    def _read_body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n > 0 else b""

    def _answer(self, status, body=b'{"status":"ok"}\n'):
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _drop(self):
        """Closes the connection without a byte of answer."""
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def do_POST(self):
        state = self.server.state
        body = self._read_body()
        if self.path.startswith("/_control/"):
            mode = self.path[len("/_control/"):]
            if mode not in MODES:
                self._answer(400, b'{"error":"unknown mode"}\n')
                return
            state.set_mode(mode)
            self._answer(200)
            return
        entry = {
            "time": time.time(),
            "path": self.path,
            "headers": {k.lower(): v for k, v in self.headers.items()},
            "body": body.decode("utf-8", "replace"),
        }
        mode = state.mode()
        if mode == "fail":
            state.record(dict(entry, outcome="fail"))
            self._answer(500, b'{"error":"collector told to fail"}\n')
        elif mode == "hang":
            state.record(dict(entry, outcome="hang"))
            while state.mode() == "hang":
                time.sleep(0.05)
            self._drop()
        elif mode == "lose":
            # The event is taken (recorded), the answer never arrives.
            state.set_mode("ok")
            state.record(dict(entry, outcome="lost"))
            self._drop()
        else:
            state.record(dict(entry, outcome="ok"))
            self._answer(202)


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 64


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--log", required=True)
    p.add_argument("--control", required=True)
    p.add_argument("--root", default=".")
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--port-file", required=True)
    args = p.parse_args()

    root = os.path.abspath(args.root)

    class RootHandler(Handler):
        def __init__(self, *a, **kw):
            super().__init__(*a, directory=root, **kw)

    srv = Server(("127.0.0.1", args.port), RootHandler)
    srv.state = State(args.log, args.control)
    open(args.log, "a").close()
    tmp = args.port_file + ".tmp"
    with open(tmp, "w") as f:
        f.write("%d\n" % srv.server_address[1])
    os.replace(tmp, args.port_file)
    try:
        srv.serve_forever(poll_interval=0.1)
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
