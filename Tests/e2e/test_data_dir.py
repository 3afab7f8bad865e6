"""One data directory, one server: a second `serve` on a live data dir is refused and the first one
keeps serving; the cluster is never stopped under a process that uses it; /health and /ready tell
the truth when the embedded PostgreSQL is gone."""
import glob
import os
import shutil
import subprocess
import urllib.error
import urllib.request

import boto3

from server import Server


def admin_client(data_dir, url):
    """boto3 with the admin key `serve` created in the data directory."""
    with open(os.path.join(data_dir, "credentials")) as f:
        key_id, secret = next(line.split()[:2] for line in f if line.strip() and not line.startswith("#"))
    return boto3.client("rekognition", endpoint_url=url, region_name="us-east-1",
                        aws_access_key_id=key_id, aws_secret_access_key=secret)


def status(url):
    try:
        with urllib.request.urlopen(url, timeout=30) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def serve_once(faceledger, data_dir):
    """Runs a `serve` that is expected to refuse to start; returns its CompletedProcess."""
    return subprocess.run([faceledger, "serve", "--port", "0", "--data-dir", data_dir],
                          capture_output=True, text=True, timeout=120)


def test_a_second_serve_on_a_live_data_dir_is_refused_and_the_first_keeps_serving(faceledger, data_dir):
    cluster = os.path.join(data_dir, "pg")
    with Server(faceledger, "--data-dir", data_dir) as first:
        client = admin_client(data_dir, first.url)
        client.create_collection(CollectionId="before")

        second = serve_once(faceledger, data_dir)
        assert second.returncode == 1, second.stderr
        assert "listening on" not in second.stdout
        assert os.path.realpath(data_dir) in second.stderr or data_dir in second.stderr, second.stderr
        assert f"pid {first.process.pid}" in second.stderr, second.stderr
        assert "usage:" not in second.stderr.lower()

        # The first server's database was left alone: it still answers, reads and writes.
        assert first.process.poll() is None
        assert status(first.url + "/ready") == 200 and status(first.url + "/health") == 200
        client.create_collection(CollectionId="after")
        assert [c for c in client.list_collections()["CollectionIds"]] == ["before", "after"]

        # A command that joins the running cluster does not stop it when it exits either.
        migrate = subprocess.run([faceledger, "migrate", "--data-dir", data_dir], capture_output=True, text=True, timeout=120)
        assert migrate.returncode == 0, migrate.stderr
        assert os.path.exists(os.path.join(cluster, "postmaster.pid"))
        assert client.describe_collection(CollectionId="after")["UserCount"] == 0

        # Killed with SIGKILL, the first server leaves its cluster running but holds no lock any more.
        first.process.kill()
        first.process.wait()
    assert os.path.exists(os.path.join(cluster, "postmaster.pid"))

    with Server(faceledger, "--data-dir", data_dir) as third:
        assert admin_client(data_dir, third.url).list_collections()["CollectionIds"] == ["before", "after"]
        assert third.stop() == 0
    assert not os.path.exists(os.path.join(cluster, "postmaster.pid"))  # taken over, and stopped with it


def pg_ctl():
    found = shutil.which("pg_ctl") or sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"),
                                             key=lambda p: int(p.split("/")[4]))[-1]
    return [*(["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []), found]


def test_health_and_ready_say_503_when_the_embedded_postgres_is_gone(faceledger, data_dir):
    with Server(faceledger, "--data-dir", data_dir) as server:
        assert status(server.url + "/health") == 200 and status(server.url + "/ready") == 200
        subprocess.run([*pg_ctl(), "-D", os.path.join(data_dir, "pg"), "-m", "immediate", "-w", "stop"],
                       check=True, capture_output=True, timeout=60)
        # The server cannot get its database back by itself: not ready, and not healthy either, so a
        # supervisor restarts it.
        assert status(server.url + "/ready") == 503
        assert status(server.url + "/health") == 503
        server.stop()

    # A new server starts the cluster again.
    with Server(faceledger, "--data-dir", data_dir) as server:
        assert status(server.url + "/health") == 200 and status(server.url + "/ready") == 200
        assert server.stop() == 0
