"""What a new user meets first: a busy port, the data directory and the key `serve` creates, rate limits."""
import os
import re
import socket
import stat
import subprocess
import time

import boto3
import pytest
from botocore.config import Config

from server import Server


def test_a_busy_port_is_said_before_the_embedded_postgres_is_set_up(faceledger, data_dir):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        fresh = os.path.join(data_dir, "fresh")
        result = subprocess.run([faceledger, "serve", "--port", str(port), "--data-dir", fresh],
                                capture_output=True, text=True, timeout=60)
    assert result.returncode == 1, result.stderr
    assert f"port {port}" in result.stderr and "--port" in result.stderr, result.stderr
    assert "usage:" not in result.stderr.lower()
    assert not os.path.exists(os.path.join(fresh, "pg"))  # no cluster was initialised for nothing


def mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def await_stderr(server, text, timeout=30):
    """The first line the server logged that contains `text`, once it has."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = [line for line in server.stderr_lines if text in line]
        if found:
            return found[0]
        time.sleep(0.05)
    raise AssertionError(f"no {text!r} in:\n" + "".join(server.stderr_lines))


def serve_with_umask(umask, *args):
    """A server started with `umask` (the child inherits it at fork; ours is restored at once)."""
    previous = os.umask(umask)
    try:
        return Server(*args)
    finally:
        os.umask(previous)


def test_first_start_creates_a_private_data_dir_and_key_and_says_the_real_address(faceledger, database_url, data_dir):
    fresh = os.path.join(data_dir, "fresh")
    # Even with the most permissive umask, nothing is created readable by others.
    with serve_with_umask(0, faceledger, "--database-url", database_url, "--data-dir", fresh) as server:
        credentials = os.path.join(fresh, "credentials")
        assert mode(credentials) == 0o600
        # Run as root, the `postgres` system user (the embedded cluster's) may only traverse it.
        assert mode(fresh) == (0o710 if os.geteuid() == 0 else 0o700)
        assert [f for f in os.listdir(fresh) if f.endswith(".new")] == []  # no temporary file left behind

        notice = await_stderr(server, "created an admin key")
        assert f"--endpoint-url {server.url}" in notice and ":0" not in server.url
        # The notice's command line reads the secret out of the file as written.
        key_id, secret = open(credentials).read().split("\n")[2].split()[:2]
        assert f"AWS_ACCESS_KEY_ID={key_id}" in notice
        read_secret = re.search(r"AWS_SECRET_ACCESS_KEY=\$\((.*?)\) aws ", notice).group(1)
        assert subprocess.run(["sh", "-c", read_secret], capture_output=True, text=True).stdout.strip() == secret
        assert server.stop() == 0

    # Started again, it keeps the key and says nothing about creating one.
    with Server(faceledger, "--database-url", database_url, "--data-dir", fresh) as server:
        assert open(credentials).read().split("\n")[2].split()[:2] == [key_id, secret]
        client = boto3.client("rekognition", endpoint_url=server.url, region_name="us-east-1",
                              aws_access_key_id=key_id, aws_secret_access_key=secret)
        assert client.list_collections()["CollectionIds"] == []
        assert server.stop() == 0
        assert not any("created an admin key" in line for line in server.stderr_lines)


def test_a_rate_below_one_lets_one_request_through_then_one_every_interval(faceledger, database_url, data_dir):
    credentials = os.path.join(data_dir, "credentials-rate")
    with open(credentials, "w") as f:
        f.write("AKIDHALF00000000001 half-secret-0000000000000000000000000001 erin writer rate=0.5\n")
    with Server(faceledger, "--database-url", database_url, "--credentials-file", credentials) as server:
        client = boto3.client("rekognition", endpoint_url=server.url, region_name="us-east-1",
                              aws_access_key_id="AKIDHALF00000000001",
                              aws_secret_access_key="half-secret-0000000000000000000000000001",
                              config=Config(retries={"total_max_attempts": 1}))
        sent = time.monotonic()
        client.list_collections()  # a full bucket holds one request
        answered = time.monotonic()
        with pytest.raises(client.exceptions.ThrottlingException):
            client.list_collections()
        # One token every 2 s: still refused 1 s later, admitted once 2 s have passed.
        time.sleep(max(0.0, sent + 1.0 - time.monotonic()))
        with pytest.raises(client.exceptions.ThrottlingException):
            client.list_collections()
        time.sleep(max(0.0, answered + 2.2 - time.monotonic()))
        client.list_collections()
        assert server.stop() == 0
