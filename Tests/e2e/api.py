"""Talking to a running FaceLedger as users do: boto3, the AWS CLI, and signed raw requests."""
import json
import os
import random
import subprocess
import urllib.error
import urllib.request

import boto3
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials

from conftest import KEYS, psql


class Api:
    def __init__(self, server, database_url):
        self.server = server
        self.url = server.url
        self.database_url = database_url

    def client(self, role="admin", **config):
        key_id, secret = KEYS[role][0], KEYS[role][1]
        return boto3.client("rekognition", endpoint_url=self.url, region_name="us-east-1",
                            aws_access_key_id=key_id, aws_secret_access_key=secret,
                            config=Config(**config) if config else None)

    def raw(self, target, body, role="admin", headers=None, sign=True, service="rekognition", secret=None):
        """POSTs `body` (bytes, str or a JSON-able value) with `X-Amz-Target: target`, signed like an SDK.
        Returns (status, headers, parsed JSON body or raw text)."""
        if not isinstance(body, (bytes, str)):
            body = json.dumps(body)
        data = body.encode() if isinstance(body, str) else body
        request = AWSRequest(method="POST", url=self.url + "/", data=data,
                             headers={"Content-Type": "application/x-amz-json-1.1", **({"X-Amz-Target": target} if target else {}),
                                      **(headers or {})})
        if sign:
            key_id, key_secret = KEYS[role][0], secret or KEYS[role][1]
            SigV4Auth(Credentials(key_id, key_secret), service, "us-east-1").add_auth(request)
        prepared = request.prepare()
        http = urllib.request.Request(prepared.url, data=data, headers=dict(prepared.headers), method="POST")
        try:
            with urllib.request.urlopen(http, timeout=30) as response:
                return response.status, dict(response.headers), _parse(response.read())
        except urllib.error.HTTPError as error:
            return error.code, dict(error.headers), _parse(error.read())

    def import_faces(self, collection_id, embeddings, role="admin", **extra):
        faces = [{"Embedding": e} if isinstance(e, list) else e for e in embeddings]
        status, _, body = self.raw("FaceLedger.ImportFaces", {"CollectionId": collection_id, "Faces": faces, **extra}, role=role)
        assert status == 200, body
        return [record["Face"]["FaceId"] for record in body["FaceRecords"]]

    def aws(self, *args, role="admin"):
        """Runs the AWS CLI against the server; returns the CompletedProcess (stdout is JSON)."""
        key_id, secret = KEYS[role][0], KEYS[role][1]
        env = {**os.environ, "AWS_ACCESS_KEY_ID": key_id, "AWS_SECRET_ACCESS_KEY": secret, "AWS_DEFAULT_REGION": "us-east-1",
               "AWS_CONFIG_FILE": "/dev/null", "AWS_SHARED_CREDENTIALS_FILE": "/dev/null"}
        return subprocess.run(["aws", "rekognition", *args, "--endpoint-url", self.url, "--output", "json"],
                              capture_output=True, text=True, env=env, timeout=60)

    def events(self, where="TRUE"):
        """(type, collection_id, principal, operation) of every event, in position order."""
        rows = psql(self.database_url, f"SELECT type, collection_id, principal, operation FROM events WHERE {where} ORDER BY position")
        return [tuple(line.split("|")) for line in rows.splitlines() if line]


def _parse(raw):
    try:
        return json.loads(raw)
    except ValueError:
        return raw.decode(errors="replace")


def embedding(base=None, noise=0.0, dim=16):
    """A random embedding, or `base` with some noise."""
    if base is None:
        return [random.uniform(-1, 1) for _ in range(dim)]
    return [b + random.uniform(-noise, noise) for b in base]
