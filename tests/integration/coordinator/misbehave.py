"""misbehave.py: a coordinator that misbehaves in the ways a static nginx
cannot, for test-coordinator.sh (started through lib-coordinator.sh).

It serves SERVE_DIR/current like the nginx of the tests (manifest,
manifest.minisig, packages/..., with Range support), resolving the symlink
per request, except that package bodies (packages/* but not *.minisig)
follow MODE:

  normal    served as they are
  stall     headers with the full length, half the body, then silence
            until the client hangs up, logged as a line
            "STALL TARGET silent=SECONDS"
  drop      the first response sends --drop-after bytes and closes the
            connection; later ones are served as they are (Range: 206)
  endless   200 without a length, then bytes until the client hangs up
  error500  500 Internal Server Error
  race      packages as they are; the FIRST /manifest request gets the
            file --first-manifest (a manifest from an earlier release)

It binds 127.0.0.1 on a free port and writes the port to --port-file once
it listens. Each request is one line in --log:
  METHOD TARGET STATUS range=<Range or -> inm=<If-None-Match or -> sent=N
Standard library only.
"""

import argparse
import http.server
import os
import re
import select
import socketserver
import sys
import threading
import time

STALL_MAX = 60  # seconds a stalled response stays open at most
ENDLESS_MAX = 1 << 30  # bytes an endless body sends at most


class State:
    lock = threading.Lock()
    package_requests = 0
    manifest_requests = 0


def parse_args():
    p = argparse.ArgumentParser()
    p.add_argument("--root", required=True)
    p.add_argument("--mode", default="normal",
                   choices=["normal", "stall", "drop", "endless", "error500", "race"])
    p.add_argument("--port-file", required=True)
    p.add_argument("--log", required=True)
    p.add_argument("--drop-after", type=int, default=0,
                   help="bytes sent before the drop (default: half the file)")
    p.add_argument("--first-manifest")
    return p.parse_args()


ARGS = parse_args()
LOG_LOCK = threading.Lock()


def log_line(method, target, status, rng, inm, sent):
    with LOG_LOCK, open(ARGS.log, "a") as f:
        f.write("%s %s %d range=%s inm=%s sent=%d\n" %
                (method, target, status, rng or "-", inm or "-", sent))


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "misbehave/1"

    def log_message(self, fmt, *args):
        pass

    def finish_log(self, status, sent):
        log_line(self.command, self.path, status, self.headers.get("Range"),
                 self.headers.get("If-None-Match"), sent)

    def simple(self, status, text):
        body = text.encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)
        self.finish_log(status, len(body))

    def local_path(self):
        path = self.path.split("?", 1)[0]
        parts = [p for p in path.split("/") if p]
        if not parts or any(p in (".", "..") for p in parts):
            return None
        return os.path.join(ARGS.root, "current", *parts)

    def do_HEAD(self):
        self.do_GET()

    def do_GET(self):
        try:
            self.serve()
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    def serve(self):
        path = self.local_path()
        url_path = self.path.split("?", 1)[0]
        is_package = url_path.startswith("/packages/") and not url_path.endswith(".minisig")
        if is_package:
            with State.lock:
                State.package_requests += 1
                nth = State.package_requests
            if ARGS.mode == "error500":
                return self.simple(500, "internal error (misbehave.py)\n")
        if url_path == "/manifest" and ARGS.mode == "race":
            with State.lock:
                State.manifest_requests += 1
                first = State.manifest_requests == 1
            if first:
                path = ARGS.first_manifest
        if not path or not os.path.isfile(path):
            return self.simple(404, "not found\n")
        with open(path, "rb") as f:
            data = f.read()

        if is_package and ARGS.mode == "endless":
            return self.endless()

        start, end = 0, len(data)
        rng = self.headers.get("Range")
        status = 200
        if rng:
            m = re.fullmatch(r"bytes=(\d+)-(\d*)", rng.strip())
            if not m or int(m.group(1)) >= len(data):
                return self.simple(416, "bad range\n")
            start = int(m.group(1))
            if m.group(2):
                end = min(end, int(m.group(2)) + 1)
            status = 206
        body = data[start:end]

        self.send_response(status)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Accept-Ranges", "bytes")
        if status == 206:
            self.send_header("Content-Range", "bytes %d-%d/%d" % (start, end - 1, len(data)))
        self.end_headers()
        if self.command == "HEAD":
            return self.finish_log(status, 0)

        if is_package and ARGS.mode == "stall":
            half = len(body) // 2
            self.wfile.write(body[:half])
            self.wfile.flush()
            self.finish_log(status, half)
            silent = self.wait_for_hangup(STALL_MAX)
            with LOG_LOCK, open(ARGS.log, "a") as f:
                f.write("STALL %s silent=%.1f\n" % (self.path, silent))
            self.close_connection = True
            return
        if is_package and ARGS.mode == "drop" and nth == 1:
            cut = ARGS.drop_after or len(body) // 2
            self.wfile.write(body[:cut])
            self.wfile.flush()
            self.finish_log(status, cut)
            self.close_connection = True
            return
        self.wfile.write(body)
        self.finish_log(status, len(body))

    def endless(self):
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True
        chunk = b"\0" * 65536
        sent = 0
        try:
            while sent < ENDLESS_MAX:
                self.wfile.write(chunk)
                sent += len(chunk)
        finally:
            self.finish_log(200, sent)

    def wait_for_hangup(self, limit):
        """Waits until the client closes the connection (at most limit
        seconds); returns how long that took."""
        start = time.monotonic()
        sock = self.connection
        while time.monotonic() < start + limit:
            r, _, _ = select.select([sock], [], [], 0.05)
            if r:
                try:
                    if not sock.recv(4096):
                        break
                except OSError:
                    break
        return time.monotonic() - start


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True


def main():
    srv = Server(("127.0.0.1", 0), Handler)
    tmp = ARGS.port_file + ".tmp"
    with open(tmp, "w") as f:
        f.write("%d\n" % srv.server_address[1])
    os.rename(tmp, ARGS.port_file)
    try:
        srv.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
