"""A fault-injection proxy for the ledger's upstream: it forwards AWS JSON requests unchanged (the Host
header too, so SigV4 signatures made for the proxy still verify upstream) and, on a schedule a test
sets, fails them:

- before they reach the upstream: an error answer (`error_before`, e.g. 500 InternalServerError or 400
  ThrottlingException) — the upstream never sees the request;
- after the upstream processed them: an error answer instead of the upstream's (`error_after`, e.g. 503)
  or a connection reset (`reset_after`) — the upstream executed the request, the caller cannot know;
- by holding them past the caller's timeout (`delay`) before forwarding — the upstream executes the
  request late, after the caller gave up;

and heals when its schedule is empty (or `heal()`). It can also stand in for an upstream's answer
(`answer`, with `body`): what Amazon Rekognition would say where the upstream at hand, a FaceLedger, cannot
(IndexFaces finds no faces in an image without an image model). Every request it saw is kept in `seen`,
and its headers in `seen_headers`.
"""
import http.client
import json
import socket
import struct
import threading
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlparse


class Fault:
    """One scheduled fault. `target` limits it to one operation (e.g. "AssociateFaces"); None: any."""

    def __init__(self, kind, status=500, code="InternalServerError", seconds=0.0, target=None, body=None):
        assert kind in ("error_before", "error_after", "reset_after", "delay", "answer")
        self.kind, self.status, self.code, self.seconds, self.target = kind, status, code, seconds, target
        self.body = body

    def applies_to(self, target):
        return self.target is None or (target or "").endswith("." + self.target)


class FaultProxy:
    def __init__(self, upstream_url):
        parsed = urlparse(upstream_url)
        self.upstream = (parsed.hostname, parsed.port)
        self.schedule = deque()
        self.seen = []  # (target, fault kind or None) per request
        self.seen_headers = []  # {lower-case name: value} per request
        self.lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_GET(self):
                self._forward(b"")

            def do_POST(self):
                self._forward(self.rfile.read(int(self.headers.get("Content-Length") or 0)))

            def _forward(self, body):
                target = self.headers.get("X-Amz-Target")
                fault = proxy._take(target)
                with proxy.lock:
                    proxy.seen.append((target, fault.kind if fault else None))
                    proxy.seen_headers.append({name.lower(): value for name, value in self.headers.items()})
                if fault and fault.kind == "error_before":
                    return self._answer_error(fault)
                if fault and fault.kind == "answer":
                    return self._answer(fault.status, json.dumps(fault.body).encode())
                if fault and fault.kind == "delay":
                    threading.Event().wait(fault.seconds)  # the caller times out meanwhile
                status, headers, answer = proxy._send_upstream(self.command, self.path, self.headers, body)
                if fault and fault.kind == "error_after":
                    return self._answer_error(fault)
                if fault and fault.kind == "reset_after":
                    # SO_LINGER 0: close with RST, as a connection cut after the upstream answered.
                    self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    self.close_connection = True
                    self.connection.close()
                    return
                try:
                    self.send_response(status)
                    for name, value in headers:
                        if name.lower() not in ("content-length", "transfer-encoding", "connection", "date", "server"):
                            self.send_header(name, value)
                    self.send_header("Content-Length", str(len(answer)))
                    self.end_headers()
                    self.wfile.write(answer)
                except OSError:
                    pass  # the caller gave up (a delay past its timeout)

            def _answer(self, status, body):
                self.send_response(status)
                self.send_header("Content-Type", "application/x-amz-json-1.1")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _answer_error(self, fault):
                body = json.dumps({"__type": fault.code, "message": "injected by the fault proxy"}).encode()
                self.send_response(fault.status)
                self.send_header("Content-Type", "application/x-amz-json-1.1")
                self.send_header("x-amzn-ErrorType", fault.code)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def _take(self, target):
        with self.lock:
            for fault in list(self.schedule):
                if fault.applies_to(target):
                    self.schedule.remove(fault)
                    return fault
        return None

    def _send_upstream(self, method, path, headers, body):
        connection = http.client.HTTPConnection(*self.upstream, timeout=120)
        try:
            connection.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
            for name, value in headers.items():
                if name.lower() not in ("content-length", "connection"):
                    connection.putheader(name, value)
            connection.putheader("Content-Length", str(len(body)))
            connection.endheaders(body)
            response = connection.getresponse()
            return response.status, response.getheaders(), response.read()
        finally:
            connection.close()

    def fail(self, *faults):
        """Schedules faults, applied in order to the next matching requests."""
        with self.lock:
            self.schedule.extend(faults)

    def heal(self):
        with self.lock:
            self.schedule.clear()

    def faults_left(self):
        with self.lock:
            return len(self.schedule)

    def close(self):
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
