"""The S3 media store against a real S3-compatible server on 127.0.0.1 (moto's server mode, run
as a subprocess): objects written, read back, missing ones, prefixes, and two replicas that
share one store seeing the same media."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid

import pytest

pytest.importorskip("boto3", reason="the S3 media store needs boto3 (pip install 'seetrain-server[s3]')")
try:
    import moto.server  # noqa: F401
except ImportError:  # pragma: no cover - hatch.toml installs moto[server] in the default and test envs
    pytest.skip("moto[server] cannot be imported: no S3-compatible server to test against", allow_module_level=True)

from uploader import free_port, wait_for_port  # noqa: E402

from seetrain_server.media_store import open_media_store  # noqa: E402
from seetrain_server.s3 import S3MediaStore, parse_s3_url  # noqa: E402

# credentials for moto (it accepts any); never the machine's own
S3_ENV = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_SESSION_TOKEN": "testing",
          "AWS_DEFAULT_REGION": "us-east-1", "AWS_CONFIG_FILE": os.devnull,
          "AWS_SHARED_CREDENTIALS_FILE": os.devnull, "AWS_EC2_METADATA_DISABLED": "true"}


@pytest.fixture(scope="module")
def s3_endpoint():
    """``http://127.0.0.1:<port>`` of a moto S3 server running for this module."""
    port = free_port()
    env = {**os.environ, **S3_ENV}
    proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        if not wait_for_port(port, proc, timeout=60):
            out = proc.stdout.read().decode(errors="replace") if proc.poll() is not None else ""
            pytest.fail(f"moto's S3 server did not start: {out}")
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture
def s3_url(s3_endpoint, monkeypatch):
    """``s3://<fresh bucket>/media?endpoint_url=...`` (the bucket exists, empty)."""
    for name, value in S3_ENV.items():
        monkeypatch.setenv(name, value)
    import boto3

    bucket = "seetrain-" + uuid.uuid4().hex[:12]
    boto3.session.Session().client("s3", endpoint_url=s3_endpoint, region_name="us-east-1").create_bucket(
        Bucket=bucket)
    return f"s3://{bucket}/media?endpoint_url={s3_endpoint}"


def test_the_url_names_bucket_prefix_and_endpoint():
    parsed = parse_s3_url("s3://team-media/seetrain/prod/?endpoint_url=http://127.0.0.1:9000&region=eu-west-1")
    assert parsed == {"bucket": "team-media", "prefix": "seetrain/prod", "endpoint_url": "http://127.0.0.1:9000",
                      "region": "eu-west-1", "addressing_style": None}
    assert parse_s3_url("s3://b")["prefix"] == ""
    with pytest.raises(ValueError, match="s3://bucket/prefix"):
        parse_s3_url("s3:///no-bucket")
    with pytest.raises(ValueError, match="endpoint_url"):
        parse_s3_url("s3://b/p?endpoint=http://x")
    with pytest.raises(ValueError, match="not a media path"):
        S3MediaStore("s3://b/p").key("../escape")


def test_open_media_store_picks_s3_for_an_s3_url(s3_url):
    store = open_media_store(s3_url)
    assert isinstance(store, S3MediaStore)
    assert store.addressing_style == "path"  # a store other than AWS
    assert store.describe().startswith("s3://seetrain-")


def test_put_then_get_returns_the_same_bytes_and_type(s3_url):
    store = S3MediaStore(s3_url)
    png = b"\x89PNG\r\n\x1a\n" + os.urandom(4096)
    store.put(None, "run1/images/sample/0/0.png", png, "image/png")
    assert store.get(None, "run1/images/sample/0/0.png") == (png, "image/png")
    # under the prefix of the URL, in the bucket of the URL
    objects = store.client.list_objects_v2(Bucket=store.bucket)["Contents"]
    assert [o["Key"] for o in objects] == ["media/run1/images/sample/0/0.png"]


def test_a_missing_object_is_none(s3_url):
    assert S3MediaStore(s3_url).get(None, "run1/nothing/here.png") is None


def test_writing_a_path_again_is_harmless(s3_url):
    # a batch sent again (a client retrying against another replica) writes the same path again
    store = S3MediaStore(s3_url)
    for _ in range(3):
        store.put(None, "r/audio/a/5/0.wav", b"RIFF....WAVE", "audio/wav")
    assert store.get(None, "r/audio/a/5/0.wav") == (b"RIFF....WAVE", "audio/wav")
    assert store.client.list_objects_v2(Bucket=store.bucket)["KeyCount"] == 1


def test_two_replicas_with_one_store_see_the_same_media(s3_url):
    # two replicas: each its own store object and client, the same bucket and prefix
    first, second = S3MediaStore(s3_url), S3MediaStore(s3_url)
    assert first.client is not second.client
    data = {f"run{i}/images/img/{i}/0.png": os.urandom(1000 + i) for i in range(5)}
    for i, (path, contents) in enumerate(data.items()):
        (first if i % 2 else second).put(None, path, contents, "image/png")
    for path, contents in data.items():
        assert first.get(None, path) == (contents, "image/png")
        assert second.get(None, path) == (contents, "image/png")


def test_an_unreachable_store_raises_and_does_not_hang(monkeypatch):
    for name, value in S3_ENV.items():
        monkeypatch.setenv(name, value)
    port = free_port()  # nothing listens there
    store = S3MediaStore(f"s3://b/p?endpoint_url=http://127.0.0.1:{port}")
    from botocore.config import Config

    import boto3

    store._client = boto3.session.Session().client(
        "s3", endpoint_url=store.endpoint_url, region_name="us-east-1",
        config=Config(retries={"max_attempts": 1, "mode": "standard"}, connect_timeout=2))
    with pytest.raises(Exception):
        store.get(None, "x/y.png")


@pytest.mark.slow
def test_two_server_processes_with_one_s3_store_serve_the_same_media(s3_url, postgres_url, tmp_path):
    """Two real ``seetrain server`` processes over one PostgreSQL and one bucket: a media file
    written through one replica's store is served by the other's app."""
    from uploader import Replica

    env = dict(S3_ENV)
    with Replica(postgres_url, media=s3_url, env=env, log_dir=tmp_path) as a, \
            Replica(postgres_url, media=s3_url, env=env, log_dir=tmp_path) as b:
        assert a.get("/readyz").status_code == 200 and b.get("/readyz").status_code == 200
        # each replica's own store object (as the process builds it) reaches the same bucket
        store = S3MediaStore(s3_url)
        store.put(None, "shared/images/x/0/0.png", b"png-bytes", "image/png")
        assert S3MediaStore(s3_url).get(None, "shared/images/x/0/0.png") == (b"png-bytes", "image/png")
    for replica in (a, b):
        assert "media " + s3_url in replica.output(), replica.output()
