"""Two real ranks (torch.distributed, gloo over loopback): the run starts on the main
process only; the other rank's backend logs nothing and starts no run."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap

import pytest

import seetrain

WORKER = textwrap.dedent("""
    import sys
    import torch.distributed as dist
    dist.init_process_group("gloo")
    from mmengine.dist import get_rank
    import seetrain
    from seetrain_mm import SeeTrainVisBackend

    backend = SeeTrainVisBackend(init_kwargs=dict(project="ranks", experiment_name="ddp"))
    rank = get_rank()
    # the backend called directly, as a user's hook might (the Visualizer already skips
    # non-main ranks through master_only)
    backend.add_scalar("rank_value", 10.0 + rank, step=rank)
    run = backend.experiment
    print("rank", rank, "run", None if run is None else run.project, "active", seetrain.active_run() is not None)
    dist.barrier()
    backend.close()
    dist.destroy_process_group()
""")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.slow
def test_only_the_main_rank_logs(tmp_path):
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    env = dict(os.environ, MASTER_ADDR="127.0.0.1", MASTER_PORT=str(_free_port()), WORLD_SIZE="2",
               GLOO_SOCKET_IFNAME="lo")
    workers = [subprocess.Popen([sys.executable, str(script)], cwd=str(tmp_path), text=True,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                env=dict(env, RANK=str(rank), LOCAL_RANK=str(rank)))
               for rank in (0, 1)]
    outputs = [w.communicate(timeout=240)[0] for w in workers]
    assert [w.returncode for w in workers] == [0, 0], outputs
    lines = sorted(line for out in outputs for line in out.splitlines() if line.startswith("rank "))
    assert lines == ["rank 0 run ranks active True", "rank 1 run None active False"]

    [run] = seetrain.Api().runs(project="ranks")
    assert run.status == "finished"
    assert run.scalars("rank_value") == [(0, 10.0)]
