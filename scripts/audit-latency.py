#!/usr/bin/env python3
"""Latency of the audit queries against a running FaceLedger whose log holds scripts/million-events.sql:
sequential signed requests (one client, so the figures are the server's and PostgreSQL's own), p50 and p99
per query. Usage: audit-latency.py ENDPOINT ACCESS_KEY SECRET REQUESTS FIRST_TIME LAST_TIME (the log's
first and last recorded_at, epoch seconds)"""
import json
import random
import sys
import time
import urllib.request

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

endpoint, key, secret = sys.argv[1:4]
requests = int(sys.argv[4])
start, end = float(sys.argv[5]), float(sys.argv[6])
credentials = Credentials(key, secret)


def face(n):
    h = format(n, "032x")
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def call(operation, body):
    data = json.dumps(body).encode()
    request = AWSRequest(method="POST", url=endpoint + "/", data=data, headers={
        "Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": "FaceLedger." + operation})
    SigV4Auth(credentials, "rekognition", "us-east-1").add_auth(request)
    prepared = request.prepare()
    started = time.perf_counter()
    with urllib.request.urlopen(urllib.request.Request(prepared.url, data=data, headers=dict(prepared.headers)), timeout=60) as r:
        answer = json.load(r)
    elapsed = (time.perf_counter() - started) * 1000
    assert answer["Entries"], (operation, body)
    return elapsed


queries = {
    "GetFaceHistory": lambda: {"CollectionId": "bench", "FaceId": face(random.randint(1, 500000))},
    "GetUserHistory": lambda: {"CollectionId": "bench", "UserId": f"u{random.randint(1, 10000)}"},
    "GetPrincipalHistory (first page of 100)": lambda: {"Principal": "bench", "MaxResults": 100},
    "GetPrincipalHistory (a page of 100 from a random point)": lambda: {"Principal": "bench", "MaxResults": 100,
                                                                         "From": random.uniform(start, end)},
}
for name, make in queries.items():
    operation = name.split(" ")[0]
    for _ in range(20):  # warm-up
        call(operation, make())
    latencies = sorted(call(operation, make()) for _ in range(requests))
    p50 = latencies[len(latencies) // 2]
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
    print(f"{name}: {requests} requests, p50 {p50:.2f} ms, p99 {p99:.2f} ms")
