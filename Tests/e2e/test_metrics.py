"""GET /metrics after a known workload: exact counts by operation and error code, and the histograms."""
import json
import os
import re
import subprocess
import urllib.request

import pytest

from api import Api
from conftest import write_credentials
from server import Server


def scrape(api):
    with urllib.request.urlopen(api.url + "/metrics", timeout=30) as response:
        assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        text = response.read().decode()
    samples = {}
    for line in text.splitlines():
        match = re.fullmatch(r'([a-z_]+)(?:\{(.*)\})? (\S+)', line)
        if match:
            name, labels, value = match.groups()
            key = (name, frozenset(re.findall(r'(\w+)="([^"]*)"', labels or "")))
            samples[key] = float(value)
    return samples


def sample(samples, name, **labels):
    return samples.get((name, frozenset(labels.items())))


def test_metrics_count_every_request_by_operation_and_error_code(api):
    c = api.client(retries={"total_max_attempts": 1})
    before = scrape(api)
    c.create_collection(CollectionId="m1")
    c.create_collection(CollectionId="m2")
    with pytest.raises(c.exceptions.ResourceAlreadyExistsException):
        c.create_collection(CollectionId="m1")
    for _ in range(3):
        c.list_collections()
    assert api.raw("RekognitionService.DetectLabels", {})[0] == 400  # an operation FaceLedger does not implement
    c.create_user(CollectionId="m1", UserId="u", ClientRequestToken="t-1")
    c.create_user(CollectionId="m1", UserId="u", ClientRequestToken="t-1")  # an idempotent replay

    after = scrape(api)

    def delta(name, **labels):
        return (sample(after, name, **labels) or 0) - (sample(before, name, **labels) or 0)
    assert delta("faceledger_requests_total", operation="CreateCollection", code="OK") == 2
    assert delta("faceledger_requests_total", operation="CreateCollection", code="ResourceAlreadyExistsException") == 1
    assert delta("faceledger_requests_total", operation="ListCollections", code="OK") == 3
    assert delta("faceledger_requests_total", operation="unknown", code="UnknownOperationException") == 1
    assert delta("faceledger_requests_total", operation="CreateUser", code="OK") == 2
    assert delta("faceledger_idempotent_replays_total") == 1
    # Histograms: one observation per request, in cumulative buckets ending at +Inf.
    assert delta("faceledger_request_duration_seconds_count", operation="ListCollections") == 3
    assert sample(after, "faceledger_request_duration_seconds_bucket", operation="ListCollections", le="+Inf") == \
        sample(after, "faceledger_request_duration_seconds_count", operation="ListCollections")
    assert delta("faceledger_command_batch_size_count") >= 1
    assert sample(after, "faceledger_commands_queued") == 0
    assert sample(after, "faceledger_projector_lag_events") is not None
    # The read pool: every read waited for a connection (mostly not at all), and nothing waits now.
    assert delta("faceledger_pool_wait_seconds_count") >= 3
    assert sample(after, "faceledger_pool_connections_open") >= 1
    assert sample(after, "faceledger_pool_waiting") == 0
    assert 0 <= sample(after, "faceledger_pool_connections_in_use") <= sample(after, "faceledger_pool_connections_open")


def test_the_access_log_has_one_json_line_per_request_without_secrets(faceledger, database_url, data_dir):
    from conftest import KEYS
    with Server(faceledger, "--database-url", database_url, "--credentials-file", write_credentials(data_dir),
                "--log-format", "json") as server:
        api = Api(server, database_url)
        c = api.client(retries={"total_max_attempts": 1})
        created = c.create_collection(CollectionId="logged")
        with pytest.raises(c.exceptions.AccessDeniedException):
            api.client("auditor", retries={"total_max_attempts": 1}).create_collection(CollectionId="denied")
        assert server.stop() == 0
    records = [json.loads(line) for line in server.stderr_lines]  # every line is one JSON object
    requests = [r for r in records if r["message"] == "request"]
    by_id = {r["request_id"]: r for r in requests}
    ok = by_id[created["ResponseMetadata"]["RequestId"]]
    assert (ok["operation"], ok["status"], ok["code"], ok["principal"], ok["level"]) == \
        ("CreateCollection", "200", "OK", KEYS["admin"][2], "info")
    assert float(ok["duration_ms"]) > 0 and ok["source"] == "127.0.0.1"
    denied = [r for r in requests if r["code"] == "AccessDeniedException"]
    assert len(denied) == 1 and denied[0]["principal"] == KEYS["auditor"][2] and denied[0]["status"] == "400"
    everything = "\n".join(server.stderr_lines)
    for key in KEYS.values():
        assert key[1] not in everything  # no secret
    assert "Signature=" not in everything and "AWS4-HMAC-SHA256" not in everything


def test_a_config_file_sets_flags_and_the_environment_and_command_line_win(faceledger, database_url, data_dir):
    credentials = write_credentials(data_dir)
    config = os.path.join(data_dir, "faceledger.conf")
    with open(config, "w") as f:
        f.write(f"# FaceLedger\ndatabase-url = \"{database_url}\"\ncredentials-file = {credentials}\n"
                "log-format = json\nport = 1\n")
    # The command line's --port 0 wins over the file's port 1; the file gives the rest.
    with Server(faceledger, "--config", config) as server:
        assert Api(server, database_url).client().list_collections()["CollectionIds"] == []
        assert server.stop() == 0
    assert json.loads(next(line for line in server.stderr_lines if '"request"' in line))["operation"] == "ListCollections"
    # A variable wins over the file.
    with Server(faceledger, "--config", config, env={"FACELEDGER_LOG_FORMAT": "text"}) as server:
        assert server.stop() == 0
    assert not any(line.startswith("{") for line in server.stderr_lines)
    # A key that is no flag of the command is an error, not ignored.
    with open(config, "a") as f:
        f.write("upstream-timout = 3\n")
    result = subprocess.run([faceledger, "serve", "--config", config], capture_output=True, text=True, timeout=60)
    assert result.returncode == 64 and "`upstream-timout` is not a flag of this command" in result.stderr


def test_traces_go_to_an_otlp_collector_from_the_request_through_the_batch_to_postgresql(faceledger, database_url, data_dir):
    """A collector that speaks OTLP/HTTP (JSON here, by the standard OTEL_* variable): one server span per
    request, continuing the client's W3C trace; the command batch links to it; PostgreSQL's span is the
    batch's child."""
    import threading
    import time
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
    spans = []

    class Collector(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_POST(self):
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            assert self.path == "/v1/traces"
            for resource in body.get("resourceSpans", []):
                for scope in resource.get("scopeSpans", []):
                    spans.extend(scope.get("spans", []))
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"{}")

    collector = ThreadingHTTPServer(("127.0.0.1", 0), Collector)
    threading.Thread(target=collector.serve_forever, daemon=True).start()
    try:
        endpoint = f"http://127.0.0.1:{collector.server_address[1]}"
        with Server(faceledger, "--database-url", database_url, "--credentials-file", write_credentials(data_dir),
                    "--otlp-endpoint", endpoint, env={"OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "http/json"}) as server:
            api = Api(server, database_url)
            trace_id = "4bf92f3577b34da6a3ce929d0e0e4736"
            status, _, _ = api.raw("RekognitionService.CreateCollection", {"CollectionId": "traced"},
                                   headers={"traceparent": f"00-{trace_id}-00f067aa0ba902b7-01"})
            assert status == 200
            deadline = time.monotonic() + 30
            while not any(s["name"] == "PostgreSQL transaction" for s in spans):
                assert time.monotonic() < deadline, [s["name"] for s in spans]
                time.sleep(0.05)
            assert server.stop() == 0
    finally:
        collector.shutdown()
    def hex_id(value):
        """OTLP/JSON ids are hex by the specification; protobuf's JSON mapping writes bytes as base64."""
        import base64
        return value.lower() if len(value) in (16, 32) and all(c in "0123456789abcdefABCDEF" for c in value) \
            else base64.b64decode(value).hex()

    request = next(s for s in spans if s["name"] == "CreateCollection")
    assert hex_id(request["traceId"]) == trace_id  # the client's trace continues
    batch = next(s for s in spans if s["name"] == "command batch")
    assert any(hex_id(link["spanId"]) == hex_id(request["spanId"]) for link in batch.get("links", []))
    transaction = next(s for s in spans if s["name"] == "PostgreSQL transaction")
    assert hex_id(transaction["parentSpanId"]) == hex_id(batch["spanId"])
