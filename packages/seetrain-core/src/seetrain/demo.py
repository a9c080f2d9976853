"""The demo: trains a tiny two-layer network with numpy on synthetic data, logs it to the
local store, prints where it went and a summary, then serves the dashboard for it.

Run it with ``python -m seetrain.demo [--dir DIR] [--epochs N] [--port 5090] [--no-ui]``.
"""

from __future__ import annotations

import argparse
import sys


def train(dir: str | None = None, epochs: int = 30, seed: int = 0) -> str:
    import numpy as np

    import seetrain

    rng = np.random.default_rng(seed)
    # two interleaved half-moons, a classic small non-linear problem
    n = 512
    t = rng.uniform(0, np.pi, n)
    x = np.concatenate([np.c_[np.cos(t), np.sin(t)], np.c_[1 - np.cos(t), 0.5 - np.sin(t)]])
    x += rng.normal(0, 0.1, x.shape)
    y = np.concatenate([np.zeros(n), np.ones(n)])
    order = rng.permutation(len(x))
    x, y = x[order], y[order]
    x_train, y_train, x_val, y_val = x[:800], y[:800], x[800:], y[800:]

    config = {"lr": 0.5, "hidden": 16, "epochs": epochs, "batch_size": 64, "seed": seed}
    run = seetrain.init(project="demo", experiment_name="half-moons-mlp", dir=dir, config=config,
                        description="A 2-16-1 MLP trained with numpy on two half-moons.", tags=["demo"])
    w1 = rng.normal(0, 1, (2, config["hidden"]))
    b1 = np.zeros(config["hidden"])
    w2 = rng.normal(0, 1, (config["hidden"], 1))
    b2 = np.zeros(1)

    def forward(inputs):
        h = np.tanh(inputs @ w1 + b1)
        return h, 1 / (1 + np.exp(-(h @ w2 + b2)[:, 0]))

    step = 0
    for epoch in range(epochs):
        for start in range(0, len(x_train), config["batch_size"]):
            xb = x_train[start:start + config["batch_size"]]
            yb = y_train[start:start + config["batch_size"]]
            h, p = forward(xb)
            loss = -np.mean(yb * np.log(p + 1e-9) + (1 - yb) * np.log(1 - p + 1e-9))
            grad_out = (p - yb)[:, None] / len(xb)
            grad_w2 = h.T @ grad_out
            grad_h = grad_out @ w2.T * (1 - h ** 2)
            w2 -= config["lr"] * grad_w2
            b2 -= config["lr"] * grad_out.sum(0)
            w1 -= config["lr"] * (xb.T @ grad_h)
            b1 -= config["lr"] * grad_h.sum(0)
            run.log({"train/loss": float(loss), "train/grad_norm": float(np.linalg.norm(grad_w2))}, step=step)
            step += 1
        _, p_val = forward(x_val)
        val_loss = -np.mean(y_val * np.log(p_val + 1e-9) + (1 - y_val) * np.log(1 - p_val + 1e-9))
        run.log({"val/loss": float(val_loss), "val/accuracy": float(np.mean((p_val > 0.5) == y_val)),
                 "epoch": epoch}, step=step)
        if epoch % 10 == 0 or epoch == epochs - 1:
            # the decision surface as an image
            gx, gy = np.meshgrid(np.linspace(-1.5, 2.5, 96), np.linspace(-1, 1.5, 64))
            _, surface = forward(np.c_[gx.ravel(), gy.ravel()])
            rgb = np.stack([surface, 0.3 * np.ones_like(surface), 1 - surface], axis=1).reshape(64, 96, 3)
            run.log({"val/decision_surface": seetrain.Image(rgb, caption=f"epoch {epoch}")}, step=step)
    run.summary.update({"best_val_accuracy": float(np.mean((forward(x_val)[1] > 0.5) == y_val))})
    run.log({"notes": seetrain.Text(f"trained {epochs} epochs on {len(x_train)} points")}, step=step)
    run.finish()
    return run.id


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m seetrain.demo", description=__doc__.splitlines()[0])
    parser.add_argument("--dir", default=None, help="store directory (default: ./seetrain)")
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--port", type=int, default=5090, help="port of the dashboard (default: 5090)")
    parser.add_argument("--no-ui", action="store_true", help="do not serve the dashboard at the end")
    args = parser.parse_args(argv)
    run_id = train(args.dir, args.epochs)

    from . import cli

    print()
    status = cli.main(["show", run_id] + (["--dir", args.dir] if args.dir else []))
    if status or args.no_ui:
        return status
    try:
        from .ui import serve
    except ImportError:
        print('\nthe dashboard needs its extra: pip install "seetrain[ui]", then: seetrain ui')
        return 0
    print()
    return serve(dir=args.dir, port=args.port)


if __name__ == "__main__":
    sys.exit(main())
