"""`overcommit serve [SCENARIO]`: the console in a web browser, through textual-serve.

textual-serve runs a small web server; each browser tab that opens the page gets its own
game, a `python -m app play SCENARIO` process whose screen and keys go over a websocket
(Textual's web driver). So every key, dialog and screen works as in the terminal, and
closing the tab ends that game. Saves go to the server's `saves/` folder.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from typing import Any

from engine import InputError, load_scenario

SERVE_HINT = "pip install 'overcommit[serve]'"


def play_command(path: str) -> str:
    """The shell command textual-serve starts for each browser tab."""
    return shlex.join([sys.executable, "-m", "app", "play", path])


def cmd_serve(args: argparse.Namespace) -> int:
    from app.cli_support import DEFAULT_SCENARIO, resolve
    from app.savefile import is_save_file

    path = resolve(args.file) if args.file else DEFAULT_SCENARIO
    if not path.is_file():
        raise InputError(str(path), "(file)", "no such file")
    if not is_save_file(path):
        load_scenario(path)  # a bad file is reported here, not in every browser tab
    if not 0 < args.port < 65536:
        raise InputError(str(args.port), "--port", "expected a port number, 1 to 65535")
    try:
        from textual_serve.server import Server
    except ImportError:
        print(f"overcommit: serving the console needs textual-serve: {SERVE_HINT}",
              file=sys.stderr)
        return 1
    server = Server(play_command(str(path.resolve())), host=args.host, port=args.port,
                    title=f"Overcommit: {path.stem}", public_url=args.public_url)
    try:
        server.serve()
    except OSError as err:  # the port is taken, or the address is not this machine's
        raise InputError(f"{args.host}:{args.port}", "--host/--port",
                         f"cannot listen there: {err.strerror or err}") from None
    return 0


def add_parser(sub: Any) -> None:
    """Registers `overcommit serve` on the CLI's subcommands."""
    parser = sub.add_parser(
        "serve", help="play in a web browser (textual-serve)",
        description="Serve the console on a web page: each browser tab that opens it plays "
                    "its own game of SCENARIO (or SAVE). Ctrl+C stops the server.")
    parser.add_argument("file", nargs="?", metavar="SCENARIO|SAVE",
                        help="default: tutorial/first-night")
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to listen on (default 127.0.0.1, this machine only; "
                             "0.0.0.0 for every interface)")
    parser.add_argument("--port", type=int, default=8000, help="default 8000")
    parser.add_argument("--public-url", metavar="URL",
                        help="the address browsers use, when it is not http://HOST:PORT "
                             "(behind a proxy, or with --host 0.0.0.0)")
    parser.set_defaults(func=cmd_serve)
