"""Run every benchmark script of this folder in turn (``hatch run bench``)."""

import pathlib
import subprocess
import sys

here = pathlib.Path(__file__).parent
status = 0
for script in sorted(here.glob("*_benchmark.py")):
    print(f"== {script.name}", flush=True)
    status |= subprocess.run([sys.executable, str(script), *sys.argv[1:]]).returncode
sys.exit(status)
