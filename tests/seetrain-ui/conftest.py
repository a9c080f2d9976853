"""Fixtures of the dashboard tests: a store written by the real core, and the app over it."""

from __future__ import annotations

import os

import pytest
from ui_data import write_store


@pytest.fixture(scope="session")
def store_dir(tmp_path_factory) -> str:
    directory = str(tmp_path_factory.mktemp("ui-store") / "store")
    write_store(directory)
    return directory


@pytest.fixture(scope="session")
def run_ids(store_dir) -> dict[str, str]:
    from seetrain.store.reader import StoreReader

    reader = StoreReader(store_dir)
    try:
        return {r["name"]: r["id"] for r in reader.runs()}
    finally:
        reader.close()


@pytest.fixture(scope="session")
def app(store_dir):
    from seetrain.ui import create_app

    return create_app(store_dir)


@pytest.fixture()
def client(app):
    from starlette.testclient import TestClient

    with TestClient(app) as c:
        yield c


@pytest.fixture(scope="session")
def artifacts_dir() -> str:
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    path = os.path.join(root, "test-artifacts", "ui")
    os.makedirs(path, exist_ok=True)
    return path
