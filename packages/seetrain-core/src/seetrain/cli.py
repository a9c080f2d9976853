"""The ``seetrain`` command line: ``ls``, ``show``, ``export``, ``ui``, ``doctor``, ``adapters``,
``login``, ``sync``,
``--version``, and the commands installed distributions add through the entry-point group
``seetrain.commands`` (``seetrain server``, from ``seetrain[server]``).

Errors a user can cause (an unknown run, a missing store, a damaged store) print one line on
stderr and exit with status 1, without a traceback.
"""

from __future__ import annotations

import argparse
import csv
import datetime as _dt
import json
import os
import sys
from typing import Any, Sequence


def _fmt_time(ts: float | None) -> str:
    if ts is None:
        return "-"
    return _dt.datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M:%S")


def _fmt_duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    seconds = int(seconds)
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}h{m:02d}m{s:02d}s" if h else (f"{m}m{s:02d}s" if m else f"{s}s")


def _table(rows: list[list[str]], header: list[str]) -> str:
    widths = [max(len(str(c)) for c in col) for col in zip(header, *rows)]
    lines = ["  ".join(str(c).ljust(w) for c, w in zip(header, widths)).rstrip()]
    lines += ["  ".join(str(c).ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]
    return "\n".join(lines)


def _fmt_value(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.6g}"
    return str(v)


def _flat_items(mapping: dict, prefix: str = "") -> list[tuple[str, Any]]:
    """``a.b = v`` pairs of a nested config, sorted."""
    items: list[tuple[str, Any]] = []
    for key in sorted(mapping):
        value = mapping[key]
        if isinstance(value, dict) and value:
            items.extend(_flat_items(value, f"{prefix}{key}."))
        else:
            items.append((f"{prefix}{key}", value))
    return items


def cmd_ls(args: argparse.Namespace) -> int:
    from .api import Api

    api = Api(args.dir)
    runs = api.runs(args.project)
    if not runs:
        print(f"no runs in {api.dir}" + (f" for project {args.project!r}" if args.project else ""))
        return 0
    rows = [[r.id, r.project, r.name, r.status, _fmt_time(r.created_at), _fmt_duration(r.duration),
             ",".join(r.frameworks) or "-", "-" if r.last_step is None else str(r.last_step)] for r in runs]
    header = ["ID", "PROJECT", "NAME", "STATUS", "STARTED", "DURATION", "FRAMEWORKS", "STEPS"]
    uploads = _upload_states(api.dir)
    if uploads:  # a store that was uploaded to a team server: whether each run is fully there
        for row in rows:
            row.append(uploads.get(row[0], "-"))
        header.append("UPLOAD")
    print(_table(rows, header))
    return 0


def _upload_states(directory: str) -> dict[str, str]:
    try:
        from .remote.uploader import upload_states

        return upload_states(directory)
    except Exception:  # noqa: BLE001 - the listing never fails for the upload column
        return {}


def cmd_show(args: argparse.Namespace) -> int:
    from .api import Api

    run = Api(args.dir).run(args.run)
    print(f"run        {run.id}")
    print(f"project    {run.project}")
    print(f"name       {run.name}")
    if run.description:
        print(f"description {run.description}")
    print(f"status     {run.status}" + (f" ({run.error})" if run.error else ""))
    print(f"started    {_fmt_time(run.created_at)}   duration {_fmt_duration(run.duration)}")
    if run.frameworks:
        print(f"frameworks {', '.join(run.frameworks)}")
    if run.tags:
        print(f"tags       {', '.join(run.tags)}")
    if run.group:
        print(f"group      {run.group}")
    if run.config:
        print("config")
        for key, value in _flat_items(run.config):
            print(f"  {key} = {_fmt_value(value)}")
    summary = run.summary
    if summary:
        print("summary")
        for key in sorted(summary):
            print(f"  {key} = {_fmt_value(summary[key])}")
    kinds = run.key_kinds()
    media = sorted(k for k, kind in kinds.items() if kind != "scalar")
    if media:
        print("media")
        for key in media:
            print(f"  {key} ({kinds[key]}, {len(run.media(key))} items)")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from .api import Api

    run = Api(args.dir).run(args.run)
    keys = args.keys.split(",") if args.keys else None
    history = run.history(keys)
    out = open(args.output, "w", newline="", encoding="utf-8") if args.output else sys.stdout
    try:
        if args.format == "jsonl":
            for row in history:
                out.write(json.dumps(row, allow_nan=True) + "\n")
        else:
            columns = ["step"] + (keys or [k for k, kind in run.key_kinds().items() if kind == "scalar"])
            writer = csv.DictWriter(out, fieldnames=columns, extrasaction="ignore")
            writer.writeheader()
            for row in history:
                writer.writerow(row)
    finally:
        if out is not sys.stdout:
            out.close()
    return 0


def cmd_doctor(args: argparse.Namespace) -> int:
    import shlex

    from .errors import SeeTrainError
    from .store import doctor

    if args.force and not args.repair:
        raise SeeTrainError("seetrain doctor: --force goes with --repair")
    if args.repair:
        return _print_repair(doctor.repair(args.dir, force=args.force))
    report = doctor.check(args.dir)
    print(f"seetrain doctor: {report.db_path}")
    if report.healthy:
        print(f"  schema version {report.schema_version}; tables: {', '.join(doctor.TABLES)}")
        print("  integrity check: ok")
        print("  rows: " + ", ".join(f"{n} {t}" for t, n in report.rows.items()))
        print("the store is healthy")
        return 0
    _print_problems(report)
    if report.newer:
        print("the store was written by a newer SeeTrain: upgrade with: pip install -U seetrain")
    else:
        directory = shlex.quote(os.path.dirname(report.db_path))
        print(f"the store is damaged; recover what is readable with: seetrain doctor --dir {directory} --repair")
    return 1


def _print_problems(report) -> None:
    print("  integrity check: damaged")
    for problem in report.problems:
        print(f"    {problem}")
    if report.more_problems is None:
        print("    … (more problems not shown)")


def _print_repair(report) -> int:
    if not report.repaired:
        print(f"seetrain doctor: {report.db_path}")
        print("  integrity check: ok")
        print("the store is healthy: nothing to repair")
        return 0
    print(f"seetrain doctor: repaired {report.db_path}")
    _print_problems(report.check)
    if report.header_rebuilt:
        print("  the database header was unreadable and was rebuilt")
    rows = [[t.name, str(t.kept), "?" if t.lost is None else str(t.lost), t.note or ""] for t in report.tables]
    print("  " + _table(rows, ["TABLE", "KEPT", "LOST", ""]).replace("\n", "\n  "))
    lost = report.lost
    print(f"  the damaged file is kept as {report.aside}")
    print(f"the store is repaired: {report.kept} rows kept, {'an unknown number of' if lost is None else lost} "
          f"rows lost")
    return 0


def cmd_adapters(args: argparse.Namespace) -> int:
    from .adapters import discover_adapters

    found = discover_adapters()
    if not found:
        print('no SeeTrain adapters installed; install one with e.g.: pip install "seetrain[lightning]"')
        return 0
    rows = []
    for name in sorted(found):
        info = found[name]
        problem = info.framework_problem()
        versions = info.framework_versions()
        rows.append([
            name, info.mode or "?", f"{info.distribution} {info.version}",
            ", ".join(info.requirements) or "-",
            ", ".join(f"{k} {v}" for k, v in versions.items() if v) or "-",
            "yes" if problem is None else "no",
        ])
    print(_table(rows, ["ADAPTER", "MODE", "DISTRIBUTION", "REQUIRES", "INSTALLED", "USABLE"]))
    return 0


def cmd_ui(args: argparse.Namespace) -> int:
    try:
        from .ui import serve
    except ImportError as exc:
        print(f'seetrain: error: the dashboard needs its extra: pip install "seetrain[ui]" ({exc})', file=sys.stderr)
        return 1
    return int(serve(dir=args.dir, host=args.host, port=args.port) or 0)


def cmd_login(args: argparse.Namespace) -> int:
    from .remote.credentials import normalize_host, save_key

    key = args.key
    if not key:
        import getpass

        key = getpass.getpass(f"API key for {normalize_host(args.host)}: ").strip()
    if not key:
        print("seetrain: error: no API key given", file=sys.stderr)
        return 1
    path = save_key(args.host, key)
    print(f"seetrain: the key for {normalize_host(args.host)} is stored in {path}", file=sys.stderr)
    return 0


class _Progress:
    """A progress bar on stderr: tqdm's when it is installed, else a plain one."""

    def __init__(self, total: int, label: str) -> None:
        self.total, self.done, self.label = max(total, 0), 0, label
        self._bar = None
        try:
            from tqdm import tqdm

            self._bar = tqdm(total=self.total, desc=label, unit="values", file=sys.stderr, leave=True)
        except ImportError:
            self._draw()

    def _draw(self) -> None:
        width = 30
        filled = width if not self.total else int(width * min(self.done, self.total) / self.total)
        sys.stderr.write(f"\r{self.label} [{'#' * filled}{'.' * (width - filled)}] {self.done}/{self.total} values")
        sys.stderr.flush()

    def update(self, n: int) -> None:
        self.done += n
        if self._bar is not None:
            self._bar.update(n)
        else:
            self._draw()

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
        else:
            sys.stderr.write("\n")


def cmd_sync(args: argparse.Namespace) -> int:
    from .remote.client import Client, PermanentError, RemoteError
    from .remote.credentials import resolve
    from .remote.uploader import RunUploader, run_ids
    from .store.reader import StoreReader
    from .store.schema import resolve_dir

    host, api_key = resolve(args.host, args.key)
    if host is None:
        print("seetrain: error: no server: pass --host HOST or set SEETRAIN_HOST", file=sys.stderr)
        return 1
    directory = resolve_dir(args.dir)
    if args.all or not args.runs:
        if args.runs:
            print("seetrain: error: give run ids or --all, not both", file=sys.stderr)
            return 1
        runs = run_ids(directory)
    else:
        reader = StoreReader(directory)
        try:
            runs = [reader.run(ident)["id"] for ident in args.runs]
        finally:
            reader.close()
    failed = 0
    with Client(host, api_key, max_retries=args.retries) as client:
        for run_id in runs:
            uploader = RunUploader(directory, run_id, client)
            try:
                left = uploader.pending()
                if not (left["values"] or left["media"] or left["meta"]):
                    print(f"{run_id}: up to date on {host}", file=sys.stderr)
                    continue
                bar = _Progress(left["values"], run_id)
                try:
                    sent = uploader.upload(progress=bar.update)
                finally:
                    bar.close()
                print(f"{run_id}: {sent} batches sent to {host} ({uploader.points_sent} values)", file=sys.stderr)
            except PermanentError as exc:
                print(f"seetrain: error: {run_id}: {exc}", file=sys.stderr)
                failed += 1
                if exc.status in (401, 403):
                    break
            except RemoteError as exc:
                print(f"seetrain: error: {run_id}: {exc}; nothing is lost: run seetrain sync again", file=sys.stderr)
                failed += 1
            finally:
                uploader.close()
    return 1 if failed else 0


def build_parser() -> argparse.ArgumentParser:
    from ._version import __version__

    parser = argparse.ArgumentParser(prog="seetrain", description="SeeTrain experiment tracker.")
    parser.add_argument("--version", action="version", version=f"seetrain {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    def with_dir(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
        p.add_argument("--dir", default=None, help="store directory (default: $SEETRAIN_DIR or ./seetrain)")
        return p

    p = with_dir(sub.add_parser("ls", help="list runs"))
    p.add_argument("--project", "-p", default=None, help="only the runs of this project")
    p.set_defaults(func=cmd_ls)

    p = with_dir(sub.add_parser("show", help="show a run: config, summary, media"))
    p.add_argument("run", help="run id, id prefix or name")
    p.set_defaults(func=cmd_show)

    p = with_dir(sub.add_parser("export", help="export a run's metrics"))
    p.add_argument("run", help="run id, id prefix or name")
    p.add_argument("--format", "-f", choices=("csv", "jsonl"), default="csv")
    p.add_argument("--keys", "-k", default=None, help="comma-separated keys (default: all scalars)")
    p.add_argument("--output", "-o", default=None, help="file to write (default: stdout)")
    p.set_defaults(func=cmd_export)

    p = with_dir(sub.add_parser("ui", help="serve the dashboard of a store (needs seetrain[ui])"))
    p.add_argument("--host", default="127.0.0.1", help="interface to listen on (default: loopback only)")
    p.add_argument("--port", type=int, default=5090)
    p.set_defaults(func=cmd_ui)

    p = with_dir(sub.add_parser(
        "doctor", help="check a store's database; --repair salvages a damaged one",
        description="Check the store's database (SQLite's integrity check, the layout version, the tables): "
                    "exit status 0 when healthy, 1 when damaged. With --repair, copy every row that can still "
                    "be read into a fresh database that takes its place, keep the damaged file beside it as "
                    "seetrain.db.corrupt-<timestamp>, and print how many rows of each table were kept and "
                    "lost. A store a live run is writing to is not repaired unless --force."))
    p.add_argument("--repair", action="store_true",
                   help="salvage the readable rows of a damaged store into a new database file")
    p.add_argument("--force", action="store_true",
                   help="repair even while a run is still writing to the store (its later writes are lost)")
    p.set_defaults(func=cmd_doctor)

    p = sub.add_parser("login", help="store the API key of a team server (for remote mode and sync)")
    p.add_argument("host", help="the server's URL, e.g. http://tracker:8080")
    p.add_argument("--key", default=None, help="the API key (asked for when missing)")
    p.set_defaults(func=cmd_login)

    p = with_dir(sub.add_parser("sync", help="upload runs of a store to a team server (what it lacks only)"))
    p.add_argument("runs", nargs="*", metavar="RUN", help="run ids, id prefixes or names (default: every run)")
    p.add_argument("--all", action="store_true", help="every run of the store")
    p.add_argument("--host", default=None, help="the server (default: $SEETRAIN_HOST)")
    p.add_argument("--key", default=None, help="the API key (default: $SEETRAIN_API_KEY or seetrain login's)")
    p.add_argument("--retries", type=int, default=5, help="retries of a failed request (default: 5)")
    p.set_defaults(func=cmd_sync)

    p = sub.add_parser("adapters", help="list installed adapters and whether their framework is usable")
    p.set_defaults(func=cmd_adapters)
    _add_installed_commands(sub)
    return parser


#: the entry-point group through which other distributions add commands (``seetrain server``)
COMMANDS_GROUP = "seetrain.commands"
#: commands of optional distributions, and the extra that brings each
OPTIONAL_COMMANDS = {"server": ("the team server", "seetrain[server]")}


def _add_installed_commands(sub: argparse._SubParsersAction) -> None:
    """Let each installed ``seetrain.commands`` entry point add its command (``register(sub)``);
    an optional command that is not installed (or fails to load) gets a stub that says how to
    install it. Read here, not at import, so ``import seetrain`` pays nothing for it."""
    from importlib.metadata import entry_points

    problems: dict[str, str] = {}
    for ep in entry_points(group=COMMANDS_GROUP):
        if ep.name in sub.choices:  # never let a plugin replace a built-in command
            continue
        try:
            ep.load()(sub)
        except Exception as exc:  # noqa: BLE001 - a broken plugin must not break the whole CLI
            problems[ep.name] = f"{type(exc).__name__}: {exc}"
            if ep.name not in OPTIONAL_COMMANDS:
                print(f"seetrain: warning: the command {ep.name!r} ({ep.value}) failed to load: "
                      f"{problems[ep.name]}", file=sys.stderr)
    for name, (what, extra) in OPTIONAL_COMMANDS.items():
        if name not in sub.choices:
            _add_missing_command(sub, name, what, extra, problems.get(name))


def _add_missing_command(sub: argparse._SubParsersAction, name: str, what: str, extra: str,
                         problem: str | None) -> None:
    message = f'seetrain: error: {what} needs its extra: pip install "{extra}"'
    if problem:
        message += f" (it failed to load: {problem})"

    def missing(args: argparse.Namespace) -> int:
        print(message, file=sys.stderr)
        return 1

    # whatever follows (--help, options of the real command) is taken as is, never refused:
    # the answer is the same one line; no option prefix a user types (prefix_chars)
    p = sub.add_parser(name, help=f"{what} (needs {extra})", add_help=False, prefix_chars="\x00")
    p.add_argument("rest", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    p.set_defaults(func=missing)


def main(argv: Sequence[str] | None = None) -> int:
    from .errors import SeeTrainError

    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    try:
        return int(args.func(args) or 0)
    except (SeeTrainError, OSError) as exc:
        print(f"seetrain: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
