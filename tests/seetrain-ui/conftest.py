"""Fixtures of the dashboard tests: a store written by the real core, and the app over it."""

from __future__ import annotations

import os

import pytest
from ui_data import CHROMIUM, CHROMIUM_FLAGS, write_store


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


@pytest.fixture(scope="session")
def browser():
    """One headless Chromium for every browser test of the session (Playwright's sync API
    cannot be started twice at once)."""
    if not os.path.exists(CHROMIUM):
        pytest.fail(f"the browser tests need Debian's Chromium at {CHROMIUM}: "
                    "apt-get update && apt-get install -y chromium chromium-driver", pytrace=False)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS, headless=True)
        yield b
        b.close()
