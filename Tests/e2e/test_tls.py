"""TLS: boto3 and the AWS CLI over https:// with a CA made in the test; plain HTTP only on loopback
unless allowed."""
import os
import subprocess

import boto3
import pytest

from conftest import KEYS, write_credentials
from server import Server


@pytest.fixture
def certificates(tmp_path):
    """A CA, and a server certificate for 127.0.0.1 and localhost that it signed."""
    def openssl(*args):
        subprocess.run(["openssl", *args], check=True, capture_output=True, cwd=tmp_path)
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem", "-days", "2",
            "-subj", "/CN=FaceLedger test CA")
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=127.0.0.1")
    (tmp_path / "san.ext").write_text("subjectAltName = IP:127.0.0.1, DNS:localhost\n")
    openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial", "-out", "server.pem",
            "-days", "2", "-extfile", "san.ext")
    return {name: str(tmp_path / name) for name in ("ca.pem", "server.pem", "server.key")}


def test_boto3_and_the_aws_cli_work_over_https_with_a_custom_ca(faceledger, database_url, data_dir, certificates):
    with Server(faceledger, "--database-url", database_url, "--credentials-file", write_credentials(data_dir),
                "--tls-cert", certificates["server.pem"], "--tls-key", certificates["server.key"]) as server:
        assert server.url.startswith("https://127.0.0.1:")
        key_id, secret = KEYS["admin"][0], KEYS["admin"][1]
        client = boto3.client("rekognition", endpoint_url=server.url, region_name="us-east-1", aws_access_key_id=key_id,
                              aws_secret_access_key=secret, verify=certificates["ca.pem"])
        client.create_collection(CollectionId="secure")
        assert client.list_collections()["CollectionIds"] == ["secure"]
        env = {**os.environ, "AWS_ACCESS_KEY_ID": key_id, "AWS_SECRET_ACCESS_KEY": secret, "AWS_DEFAULT_REGION": "us-east-1",
               "AWS_CONFIG_FILE": "/dev/null", "AWS_SHARED_CREDENTIALS_FILE": "/dev/null"}
        cli = subprocess.run(["aws", "rekognition", "list-collections", "--endpoint-url", server.url,
                              "--ca-bundle", certificates["ca.pem"], "--output", "json"], capture_output=True, text=True, env=env)
        assert cli.returncode == 0, cli.stderr
        assert '"secure"' in cli.stdout
        # Without the CA, the certificate is not trusted: nothing is sent in the clear instead.
        untrusting = boto3.client("rekognition", endpoint_url=server.url, region_name="us-east-1",
                                  aws_access_key_id=key_id, aws_secret_access_key=secret)
        with pytest.raises(Exception, match="(?i)ssl|certificate"):
            untrusting.list_collections()
        assert server.stop() == 0


def test_plain_http_is_refused_off_loopback_unless_allowed(faceledger, database_url, data_dir):
    result = subprocess.run([faceledger, "serve", "--host", "0.0.0.0", "--port", "0", "--database-url", database_url,
                             "--credentials-file", write_credentials(data_dir)], capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert "refusing to serve plain HTTP on 0.0.0.0" in result.stderr and "--allow-plaintext" in result.stderr
    with Server(faceledger, "--host", "0.0.0.0", "--database-url", database_url,
                "--credentials-file", write_credentials(data_dir), env={"FACELEDGER_ALLOW_PLAINTEXT": "1"}) as server:
        assert server.url.startswith("http://0.0.0.0:")
        assert server.stop() == 0
