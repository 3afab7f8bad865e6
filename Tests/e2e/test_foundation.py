"""The foundation, end to end: the embedded default, migrations, flags from the environment."""
import os
import subprocess
import urllib.request
from concurrent.futures import ThreadPoolExecutor

from conftest import psql
from server import Server

MIGRATIONS = sorted(f for f in os.listdir(os.path.join(os.path.dirname(__file__), "../../migrations")) if f.endswith(".sql"))
LATEST = str(int(MIGRATIONS[-1].split("_")[0]))


def get_status(url):
    with urllib.request.urlopen(url, timeout=10) as response:
        return response.status


def test_serve_runs_an_embedded_postgres_and_stops_it_on_sigterm(faceledger, data_dir):
    with Server(faceledger, "--data-dir", data_dir) as server:
        assert server.url.startswith("http://127.0.0.1:")
        assert get_status(server.url + "/health") == 200
        assert get_status(server.url + "/ready") == 200
        cluster = os.path.join(data_dir, "pg")
        socket_conninfo = f"host={cluster} user=postgres dbname=faceledger"
        assert psql(socket_conninfo, "SELECT max(version) FROM schema_migrations") == LATEST
        psql(socket_conninfo, "CREATE TABLE kept_across_restarts (note text); INSERT INTO kept_across_restarts VALUES ('still here')")
        assert os.path.exists(os.path.join(cluster, "postmaster.pid"))
        assert server.stop() == 0
    # The cluster it started is stopped with it.
    assert not os.path.exists(os.path.join(cluster, "postmaster.pid"))

    # Its data survives a restart of the service.
    with Server(faceledger, "--data-dir", data_dir) as server:
        assert psql(socket_conninfo, "SELECT note FROM kept_across_restarts") == "still here"
        assert server.stop() == 0


def test_serve_takes_over_a_cluster_left_running_by_a_killed_server(faceledger, data_dir):
    with Server(faceledger, "--data-dir", data_dir) as server:
        server.process.kill()
        server.process.wait()
    cluster = os.path.join(data_dir, "pg")
    assert os.path.exists(os.path.join(cluster, "postmaster.pid"))  # orphaned, still running
    with Server(faceledger, "--data-dir", data_dir) as server:
        assert get_status(server.url + "/ready") == 200
        assert server.stop() == 0
    assert not os.path.exists(os.path.join(cluster, "postmaster.pid"))


def test_three_concurrent_migrates_on_an_empty_database_all_succeed(faceledger, database_url):
    def migrate():
        return subprocess.run([faceledger, "migrate", "--database-url", database_url], capture_output=True, text=True)

    with ThreadPoolExecutor(3) as pool:
        results = list(pool.map(lambda _: migrate(), range(3)))
    assert [r.returncode for r in results] == [0, 0, 0], [r.stderr for r in results]
    outputs = sorted(r.stdout.strip() for r in results)
    assert sum(o.startswith("applied migrations") for o in outputs) == 1
    assert sum(o.startswith("schema up to date") for o in outputs) == 2
    assert psql(database_url, "SELECT count(*) FROM schema_migrations") == str(len(MIGRATIONS))

    again = migrate()
    assert again.returncode == 0 and again.stdout.startswith("schema up to date")


def test_flags_read_their_environment_variables(faceledger, database_url):
    result = subprocess.run([faceledger, "migrate"], capture_output=True, text=True,
                            env={**os.environ, "FACELEDGER_DATABASE_URL": database_url})
    assert result.returncode == 0, result.stderr
    assert psql(database_url, "SELECT count(*) FROM schema_migrations") == str(len(MIGRATIONS))


def test_serve_on_an_external_database_migrates_it(faceledger, database_url):
    with Server(faceledger, "--database-url", database_url) as server:
        assert psql(database_url, "SELECT count(*) FROM events") == "0"
        assert server.stop(sig=2) == 0  # SIGINT too


def test_a_database_that_cannot_be_reached_is_a_clear_error(faceledger, data_dir):
    result = subprocess.run([faceledger, "migrate", "--database-url", f"host={data_dir} dbname=nothing"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 1  # a failure at run time, not bad usage (64)
    assert "PostgreSQL connection failed" in result.stderr
    assert "usage:" not in result.stderr.lower()  # the error alone


def test_upstream_mode_says_what_it_misses_before_opening_a_database(faceledger):
    result = subprocess.run([faceledger, "reconcile", "--once"], capture_output=True, text=True)
    assert result.returncode == 64 and "--upstream (or FACELEDGER_UPSTREAM) is required" in result.stderr
    no_keys = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    no_keys.update(AWS_SHARED_CREDENTIALS_FILE="/dev/null", AWS_CONFIG_FILE="/dev/null")
    for command in (["serve", "--port", "0"], ["reconcile", "--once"]):
        result = subprocess.run([faceledger, *command, "--upstream", "http://127.0.0.1:9"], capture_output=True, text=True,
                                env=no_keys, timeout=60)
        assert result.returncode == 64 and "no credentials for the upstream: set AWS_ACCESS_KEY_ID" in result.stderr, result.stderr
    result = subprocess.run([faceledger, "serve", "--upstream", "ftp://x"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 64 and "--upstream must be an http:// or https:// URL" in result.stderr
    assert not os.path.exists(".faceledger")  # nothing was set up


def test_ready_says_why_when_migrations_are_pending_and_recovers_by_itself(api):
    import urllib.error
    import urllib.request

    def ready():
        try:
            with urllib.request.urlopen(api.url + "/ready", timeout=30) as response:
                return response.status, response.read().decode().strip()
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode().strip()
    assert ready() == (200, "ready")
    latest = psql(api.database_url, "SELECT max(version) FROM schema_migrations")
    name = psql(api.database_url, f"SELECT name FROM schema_migrations WHERE version = {latest}")
    # As if this server were newer than the database's schema.
    psql(api.database_url, f"DELETE FROM schema_migrations WHERE version = {latest}")
    status, reason = ready()
    assert status == 503 and "migrations are pending" in reason and latest in reason
    psql(api.database_url, f"INSERT INTO schema_migrations (version, name) VALUES ({latest}, '{name}')")
    assert ready() == (200, "ready")
