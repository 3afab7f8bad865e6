"""The fault-injection proxy that upstream-mode tests put between the ledger and its upstream: each fault
kind does what it says, as seen from both sides."""
import time

import boto3
import botocore
import pytest
from botocore.config import Config

from conftest import KEYS
from faultproxy import Fault, FaultProxy


def client_via(proxy, **config):
    key_id, secret = KEYS["admin"][0], KEYS["admin"][1]
    return boto3.client("rekognition", endpoint_url=proxy.url, region_name="us-east-1", aws_access_key_id=key_id,
                        aws_secret_access_key=secret, config=Config(retries={"total_max_attempts": 1}, **config))


def users(api, collection):
    return {u["UserId"] for u in api.client().list_users(CollectionId=collection)["Users"]}


def test_each_fault_kind_fails_the_caller_and_reaches_the_upstream_or_not_as_it_says(api):
    api.client().create_collection(CollectionId="c")
    with FaultProxy(api.url) as proxy:
        c = client_via(proxy)
        assert c.list_collections()["CollectionIds"] == ["c"]  # signatures made for the proxy verify upstream

        proxy.fail(Fault("error_before", status=400, code="ThrottlingException", target="CreateUser"))
        with pytest.raises(c.exceptions.ThrottlingException):
            c.create_user(CollectionId="c", UserId="before")
        assert "before" not in users(api, "c")
        assert not [e for e in api.events() if e[3] == "CreateUser"]  # the upstream never saw it

        proxy.fail(Fault("error_after", status=503, code="ServiceUnavailableException"))
        with pytest.raises(botocore.exceptions.ClientError, match="ServiceUnavailable"):
            c.create_user(CollectionId="c", UserId="after")
        assert "after" in users(api, "c")  # executed upstream, though the caller got an error

        proxy.fail(Fault("reset_after"))
        with pytest.raises((botocore.exceptions.ConnectionClosedError, botocore.exceptions.EndpointConnectionError)):
            c.create_user(CollectionId="c", UserId="reset")
        assert "reset" in users(api, "c")

        impatient = client_via(proxy, read_timeout=1, connect_timeout=1)
        proxy.fail(Fault("delay", seconds=3))
        with pytest.raises(botocore.exceptions.ReadTimeoutError):
            impatient.create_user(CollectionId="c", UserId="late")
        deadline = time.monotonic() + 30
        while "late" not in users(api, "c"):  # executed once the delay is over
            assert time.monotonic() < deadline, "the delayed request never reached the upstream"
            time.sleep(0.05)

        assert proxy.faults_left() == 0
        c.create_user(CollectionId="c", UserId="healed")
        assert [kind for target, kind in proxy.seen if target and target.endswith("CreateUser")] == [
            "error_before", "error_after", "reset_after", "delay", None]

