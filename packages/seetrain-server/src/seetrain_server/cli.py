"""``seetrain server``: the command (registered in the core's CLI through the entry point
group ``seetrain.commands``). (skeleton)"""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``server`` to the ``seetrain`` command line."""
    p = subparsers.add_parser("server", help="run the team server (seetrain[server])")
    p.set_defaults(func=lambda args: 0)
