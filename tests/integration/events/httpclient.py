#!/usr/bin/env python3
"""httpclient.py: what curl cannot do to slotd's trigger listener.

  httpclient.py garbage PORT CA
      sends malformed requests, one connection each, and prints one line per
      case: "NAME STATUS" (STATUS is the HTTP status answered, or "closed"
      when the listener closed the connection without an answer, or
      "timeout" when it said nothing for 2 s)
  httpclient.py hold PORT CA N SECONDS READY_FILE
      opens N connections and keeps them open for SECONDS: the first half
      plain TCP that never starts TLS, the others TLS with half a request
      sent; writes how many are open to READY_FILE once they all are
  httpclient.py trickle PORT CA DELAY TOKEN
      sends "GET /api/v1/status" one byte every DELAY seconds, then prints
      the status answered and how long the whole request took

All connect to 127.0.0.1:PORT; CA verifies the listener's certificate.
"""

import os
import signal
import socket
import ssl
import sys
import time

HOST = "127.0.0.1"


def tls_context(ca):
    ctx = ssl.create_default_context(cafile=ca)
    ctx.check_hostname = True
    return ctx


def tls_connect(port, ca, timeout=5):
    raw = socket.create_connection((HOST, port), timeout=timeout)
    return tls_context(ca).wrap_socket(raw, server_hostname=HOST)


def read_status(sock, timeout=2):
    """The status code of the answer, "closed" or "timeout"."""
    data = b""
    sock.settimeout(timeout)
    try:
        while b"\r\n" not in data:
            chunk = sock.recv(4096)
            if not chunk:
                break
            data += chunk
    except socket.timeout:
        return "timeout"
    except (ConnectionResetError, ssl.SSLError, OSError):
        pass
    if not data:
        return "closed"
    parts = data.split(b"\r\n", 1)[0].split()
    if len(parts) >= 2 and parts[0].startswith(b"HTTP/") and parts[1].isdigit():
        return parts[1].decode()
    return "garbled:" + repr(data[:40])


def garbage(port, ca):
    big_header = b"X-Filler: " + b"a" * 40000 + b"\r\n"
    cases = [
        ("random-bytes", os.urandom(512)),
        ("nul-bytes", b"\x00" * 256 + b"\r\n\r\n"),
        ("no-version", b"POST /api/v1/update/trigger\r\n\r\n"),
        ("bad-version", b"POST /api/v1/update/trigger HTTP/9.9\r\nHost: x\r\n\r\n"),
        ("bad-method", b"P\x01ST /api/v1/update/trigger HTTP/1.1\r\nHost: x\r\n\r\n"),
        ("header-no-colon", b"POST /api/v1/update/trigger HTTP/1.1\r\nHost x\r\n\r\n"),
        ("bad-content-length",
         b"POST /api/v1/update/trigger HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n"),
        ("huge-content-length",
         b"POST /api/v1/update/trigger HTTP/1.1\r\nHost: x\r\n"
         b"Content-Length: 99999999999999999999999\r\n\r\n"),
        ("bad-chunked",
         b"POST /api/v1/update/trigger HTTP/1.1\r\nHost: x\r\n"
         b"Transfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n"),
        ("huge-header",
         b"POST /api/v1/update/trigger HTTP/1.1\r\nHost: x\r\n" + big_header + b"\r\n"),
        ("huge-url", b"GET /" + b"a" * 40000 + b" HTTP/1.1\r\nHost: x\r\n\r\n"),
        ("no-host-1.1", b"POST /api/v1/update/trigger HTTP/1.1\r\n\r\n"),
    ]
    for name, payload in cases:
        try:
            s = tls_connect(port, ca)
            try:
                s.sendall(payload)
            except OSError:
                pass
            print(name, read_status(s))
            s.close()
        except (OSError, ssl.SSLError) as e:
            print(name, "connect-failed:%s" % type(e).__name__)
    # Not TLS at all on the TLS port.
    try:
        s = socket.create_connection((HOST, port), timeout=5)
        s.sendall(b"POST /api/v1/update/trigger HTTP/1.1\r\nHost: x\r\n\r\n")
        print("plain-http-on-tls", read_status(s))
        s.close()
    except OSError as e:
        print("plain-http-on-tls", "connect-failed:%s" % type(e).__name__)
    return 0


def hold(port, ca, n, seconds, ready_file):
    conns = []
    half = n // 2
    for i in range(n):
        if i < half:
            s = socket.create_connection((HOST, port), timeout=10)
        else:
            s = tls_connect(port, ca, timeout=10)
            s.sendall(b"GET /api/v1/status HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        conns.append(s)
    with open(ready_file + ".tmp", "w") as f:
        f.write("%d\n" % len(conns))
    os.replace(ready_file + ".tmp", ready_file)
    time.sleep(seconds)
    for s in conns:
        try:
            s.close()
        except OSError:
            pass
    return 0


def trickle(port, ca, delay, token):
    req = ("GET /api/v1/status HTTP/1.1\r\nHost: 127.0.0.1\r\n"
           "Authorization: Bearer %s\r\nConnection: close\r\n\r\n" % token).encode()
    start = time.monotonic()
    s = tls_connect(port, ca, timeout=15)
    try:
        for i in range(len(req)):
            s.sendall(req[i:i + 1])
            time.sleep(delay)
        status = read_status(s, 10)
    except OSError as e:
        status = "error:%s" % type(e).__name__
    print(status, "%.2f" % (time.monotonic() - start), len(req))
    return 0


def main(argv):
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    cmd, port, ca = argv[0], int(argv[1]), argv[2]
    if cmd == "garbage":
        return garbage(port, ca)
    if cmd == "hold":
        return hold(port, ca, int(argv[3]), float(argv[4]), argv[5])
    if cmd == "trickle":
        return trickle(port, ca, float(argv[3]), argv[4])
    sys.exit(__doc__)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
