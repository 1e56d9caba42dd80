"""`remem ui`: open the web UI in the browser, of the server that runs, or of a local one."""

from __future__ import annotations

import threading
import time
import webbrowser

import click
import httpx

from remem.errors import ConfigError

WAIT_SECONDS = 30


def answers(url: str) -> bool:
    """True when a remem server answers at `url` (its /healthz says ok)."""
    try:
        found = httpx.get(url.rstrip("/") + "/healthz", timeout=1.0)
    except httpx.HTTPError:
        return False
    try:
        return found.status_code == 200 and found.json() == {"status": "ok"}
    except ValueError:
        return False


def _open_when_up(url: str, open_browser: bool) -> None:
    """Wait for the server this command starts, then open (or print) its UI."""
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:
        if answers(url):
            _show(url, open_browser)
            return
        time.sleep(0.1)
    click.echo(f"the server did not answer at {url} within {WAIT_SECONDS}s", err=True)


def _show(url: str, open_browser: bool) -> None:
    click.echo(url)
    if open_browser and not webbrowser.open(url):
        click.echo("no browser could be opened: visit the address above", err=True)


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Where the server runs.")
@click.option("--port", default=8765, show_default=True, help="Its port.")
@click.option("--no-browser", is_flag=True, help="Print the address; do not open a browser.")
@click.pass_context
def ui(ctx: click.Context, host: str, port: int, no_browser: bool) -> None:
    """Open the web UI: browse, search, correct and forget memories, see what an agent
    is told. Opens the server running at --host:--port; when none runs there, serves
    this memory on loopback (as `remem serve` does) until stopped with Ctrl-C."""
    shown_host = f"[{host}]" if ":" in host else host
    url = f"http://{shown_host}:{port}/"
    if answers(url):
        _show(url, not no_browser)
        return
    from remem.cli.service import _is_loopback, serve

    if not _is_loopback(host):
        raise ConfigError(
            f"no remem server answers at {url}, and `remem ui` starts one only on loopback:"
            " run `remem serve` there, or use --host 127.0.0.1"
        )
    opener = threading.Thread(target=_open_when_up, args=(url, not no_browser), daemon=True)
    opener.start()
    ctx.invoke(serve, host=host, port=port)


COMMANDS = [ui]
