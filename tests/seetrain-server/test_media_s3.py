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

from seetrain_server.media_store import open_media_store
from seetrain_server.s3 import S3MediaStore, parse_s3_url
from uploader import free_port, wait_for_port

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
    import boto3
    from botocore.config import Config

    store._client = boto3.session.Session().client(
        "s3", endpoint_url=store.endpoint_url, region_name="us-east-1",
        config=Config(retries={"max_attempts": 1, "mode": "standard"}, connect_timeout=2))
    from botocore.exceptions import EndpointConnectionError

    with pytest.raises(EndpointConnectionError):
        store.get(None, "x/y.png")


def tiny_png(shade: int) -> bytes:
    """A valid 2x2 grey PNG (``shade`` 0-255)."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = b"".join(b"\x00" + bytes([shade, shade]) for _ in range(2))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 2, 2, 8, 0, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


@pytest.mark.slow
def test_two_server_processes_with_one_s3_store_serve_the_same_media(s3_url, postgres_url, tmp_path):
    """Two real ``seetrain server --media s3://...`` processes over one PostgreSQL: images
    uploaded through either replica are objects of the bucket (none in the database), and each
    replica's dashboard serves every one of them."""
    import base64

    import httpx
    from uploader import Replica

    images = {step: tiny_png(step * 40) for step in range(6)}
    with Replica(postgres_url, media=s3_url, env=S3_ENV, log_dir=tmp_path) as a, \
            Replica(postgres_url, media=s3_url, env=S3_ENV, log_dir=tmp_path) as b:
        answer = httpx.put(f"{a.url}/api/v1/runs/media-run", json={"project": "media", "name": "media-run"})
        assert answer.status_code == 200, answer.text
        for seq, (replica, steps) in enumerate([(a, range(3)), (b, range(3, 6))]):
            media = [{"key": "samples", "step": step, "index": 0, "kind": "image", "format": "png",
                      "data": base64.b64encode(images[step]).decode(), "time": time.time()} for step in steps]
            answer = httpx.post(f"{replica.url}/api/v1/runs/media-run/batches",
                                json={"source": "s", "seq": seq, "media": media}, timeout=30)
            assert answer.status_code == 200 and answer.json()["stored"] is True, answer.text
        for replica in (a, b):
            answer = replica.get("/api/runs/media-run/media", key="samples")
            assert answer.status_code == 200, answer.text
            items = answer.json()["items"]
            assert [item["step"] for item in items] == list(images)
            for item in items:
                got = httpx.get(replica.url + item["url"], timeout=30)
                assert got.status_code == 200, got.text
                assert got.content == images[item["step"]]
                assert got.headers["content-type"].startswith("image/png")
    store = S3MediaStore(s3_url)
    keys = [o["Key"] for o in store.client.list_objects_v2(Bucket=store.bucket)["Contents"]]
    assert len(keys) == len(images) and all(k.startswith("media/") for k in keys), keys
    import psycopg

    with psycopg.connect(postgres_url) as conn:
        assert conn.execute("SELECT COUNT(*) FROM media_blobs").fetchone() == (0,)
