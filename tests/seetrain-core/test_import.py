"""``import seetrain`` is cheap: no numpy, Pillow, httpx, framework, and no entry-point scan."""

from core_helpers import run_python

HEAVY = ("numpy", "PIL", "httpx", "torch", "tensorflow", "keras", "lightning", "transformers", "pluggy",
         "tenacity", "pybreaker", "soundfile", "sqlite3")


def test_import_is_light():
    proc = run_python(f"""
        import sys, importlib.metadata as md
        calls = []
        real = md.entry_points
        md.entry_points = lambda *a, **k: calls.append((a, k)) or real(*a, **k)
        before = set(sys.modules)
        import seetrain
        assert seetrain.__version__
        assert callable(seetrain.init) and callable(seetrain.log)
        loaded = set(sys.modules) - before
        heavy = [m for m in loaded if m.split(".")[0] in {HEAVY!r}]
        print("HEAVY", sorted(heavy))
        print("EP", len(calls))
    """, check=True)
    assert "HEAVY []" in proc.stdout, proc.stdout
    assert "EP 0" in proc.stdout


def test_public_names():
    import seetrain

    for name in seetrain.__all__:
        assert getattr(seetrain, name) is not None
    assert "init" in dir(seetrain)
