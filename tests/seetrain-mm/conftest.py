"""seetrain-mm tests: skipped as a whole where MMEngine (or torch) is not installed."""

import pytest

pytest.importorskip("torch")
pytest.importorskip("mmengine")
