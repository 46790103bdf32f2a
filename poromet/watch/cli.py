"""``poromet watch`` and ``poromet watch-status`` (registered by :mod:`poromet.cli`)."""

from __future__ import annotations

import logging
import sys
import time
from pathlib import Path

import click

__all__ = ["watch", "watch_status"]


def _usage(message: str) -> click.ClickException:
    exc = click.ClickException(message)
    exc.exit_code = 2
    return exc


@click.command("watch")
@click.argument("input_dir", type=click.Path(path_type=Path))
@click.option("-o", "--out", "out_dir", required=True, type=click.Path(path_type=Path),
              help="Output folder: fields.csv, samples.csv, results.json, report.html, "
                   "watch.log, quarantine/.")
@click.option("--pipeline", "-p", "pipeline", metavar="FILE|NAME", default=None,
              help="Pipeline TOML file or shipped name (default: exterior-unit).")
@click.option("--polling", is_flag=True,
              help="Poll the folder instead of native file events (network shares: SMB/NFS).")
@click.option("--interval", type=click.FloatRange(min=0.05), default=10.0, show_default=True,
              metavar="S", help="Seconds between full rescans and polls.")
@click.option("--settle", type=click.FloatRange(min=0.0), default=5.0, show_default=True,
              metavar="S", help="Seconds a file (and its sidecar) must stay unchanged.")
@click.option("--journal", type=click.Path(path_type=Path), default=None, metavar="PATH",
              help="SQLite journal on local disk (default: OUT_DIR/journal.sqlite).")
@click.option("--once", is_flag=True,
              help="Scan, measure everything stable, write the outputs and exit (cron).")
@click.option("--quiet-minutes", type=click.FloatRange(min=0.0), default=None, metavar="MIN",
              help="A sample with no new file for this long is complete "
                   "(default: the pipeline's sample.quiet_minutes).")
@click.option("--max-tries", type=click.IntRange(min=1), default=3, show_default=True,
              help="Tries before a bad file is marked failed and copied to quarantine/.")
@click.option("--no-report", is_flag=True, help="Skip report.html and the overlay pictures.")
@click.option("--roi", default=None, metavar="X,Y,W,H",
              help="Rectangle to measure in every image (a sidecar still wins).")
@click.option("--verbose", "-v", is_flag=True, help="Also print the log to the terminal.")
def watch(input_dir, out_dir, pipeline, polling, interval, settle, journal, once,
          quiet_minutes, max_tries, no_report, roi, verbose):
    """Watch INPUT_DIR and measure images as they arrive.

    Writes the same outputs as `poromet batch` into OUT_DIR and keeps them
    current; a sample still short of its fields shows as incomplete.  Stop
    with Ctrl-C or SIGTERM; restart any time (the journal remembers).
    """
    from ..cli import UsageFailure, _parse_roi, _pipeline_from_options
    from ..errors import PorometError
    from .service import WatchConfig, WatchService

    p = _pipeline_from_options(pipeline)
    if not input_dir.is_dir():
        raise UsageFailure(f"{input_dir}: no such folder to watch")
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageFailure(f"{out_dir}: cannot create the output folder ({exc})") from None
    cfg = WatchConfig(input_dir=input_dir, out_dir=out_dir, pipeline=p, journal=journal,
                      polling=polling, interval=interval, settle=settle, max_tries=max_tries,
                      quiet_minutes=quiet_minutes, report=not no_report, roi=_parse_roi(roi))
    lg = logging.getLogger("poromet.watch")
    console = None
    if verbose or not once:
        console = logging.StreamHandler(sys.stderr)
        console.setFormatter(logging.Formatter("%(asctime)s %(message)s", "%H:%M:%S"))
        lg.addHandler(console)
    try:
        code = WatchService(cfg).run(once=once)
    except PorometError as exc:
        raise UsageFailure(str(exc)) from None
    finally:
        if console is not None:
            lg.removeHandler(console)
    sys.exit(code)


def _age(t: float) -> str:
    s = max(0.0, time.time() - t)
    if s < 120:
        return f"{s:.0f} s ago"
    if s < 7200:
        return f"{s / 60:.0f} min ago"
    return f"{s / 3600:.1f} h ago"


@click.command("watch-status")
@click.argument("out_dir", type=click.Path(path_type=Path))
@click.option("--journal", type=click.Path(path_type=Path), default=None, metavar="PATH",
              help="Journal file (default: OUT_DIR/journal.sqlite).")
@click.option("--all", "show_all", is_flag=True, help="Also list every measured file.")
def watch_status(out_dir, journal, show_all):
    """Print what is pending, done and failed, from a watch service's journal."""
    from ..cli import UsageFailure
    from ..errors import PorometError
    from .journal import Journal, default_journal_path

    path = journal or default_journal_path(out_dir)
    try:
        j = Journal(path, readonly=True)
    except PorometError as exc:
        raise UsageFailure(str(exc)) from None
    with j:
        entries = j.entries()
        c = j.counts()
        samples = j.sample_states()
        click.echo(f"journal {path}")
        click.echo(f"input   {j.get_meta('input_dir') or '?'}")
        click.echo(f"files: {c['done']} done, {c['failed']} failed, "
                   f"{c['pending'] + c['measuring']} pending "
                   f"({c['measuring']} being measured), {c['superseded']} superseded versions")
        by_sample: dict[str, list] = {}
        for e in entries:
            by_sample.setdefault(e.sample, []).append(e)
        if by_sample:
            click.echo("samples:")
        for name in sorted(by_sample):
            es = by_sample[name]
            good = sum(e.state == "done" and e.status in ("ok", "flagged") for e in es)
            complete, reason = samples.get(name, (False, ""))
            click.echo(f"  {name:20s} {good:3d} good, "
                       f"{sum(e.state == 'failed' for e in es)} failed, "
                       f"{sum(e.state in ('pending', 'measuring') for e in es)} pending  "
                       f"{'complete' if complete else 'open'}"
                       + (f" ({reason})" if reason else ""))
        pending = [e for e in entries if e.state in ("pending", "measuring")]
        if pending:
            click.echo("pending:")
            for e in pending:
                click.echo(f"  {e.path}  [{e.state}, try {e.tries}, changed {_age(e.changed_at)}]"
                           + (f"  {e.message}" if e.message else ""))
        failed = [e for e in entries if e.state == "failed"]
        if failed:
            click.echo("failed:")
            for e in failed:
                click.echo(f"  {e.path}  {e.message}")
        if show_all:
            click.echo("done:")
            for e in entries:
                if e.state == "done":
                    p = (e.result or {}).get("porosity")
                    click.echo(f"  {e.path}  {e.status}  P={p if p is not None else 'n/a'}")
    sys.exit(1 if failed else 0)
