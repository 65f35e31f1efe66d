"""`overcommit campaign`: list the levels, or open the console on the level select. Apart
from app/campaign.py (the levels and the progress file, which the console imports) so that
the campaign's model never imports the console that plays it."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from app.campaign import CAMPAIGN, Campaign


def _print_levels(campaign: Campaign) -> None:
    for level in campaign.levels:
        record = campaign.progress.get(level)
        if record.won:
            status = f"won (best profit ${record.best_profit or 0:,.2f})"
        elif campaign.progress.unlocked(campaign.levels, level):
            status = "open" + (f", {record.attempts} attempt(s)" if record.attempts else "")
        else:
            status = "locked"
        print(f"{level.number:>2}. {level.title:<28} {status:<36} {level.path.name}")
    print(f"progress: {campaign.progress.path}")


def cmd_campaign(args: argparse.Namespace) -> int:
    campaign = Campaign.open(Path(args.dir), Path(args.saves))
    if args.list:
        _print_levels(campaign)
        return 0
    try:
        from app.tui import run_campaign  # Textual loads only when playing
    except ImportError as err:
        print(f"overcommit: the interactive console is not available ({err}); "
              "`overcommit campaign --list` shows the levels", file=sys.stderr)
        return 1
    return run_campaign(campaign)


def add_parser(sub: Any) -> None:
    """Registers `overcommit campaign` on the CLI's subcommands."""
    parser = sub.add_parser(
        "campaign", help="play the campaign: levels that teach the mechanisms in order",
        description="Open the console on the campaign's level select. Each level opens when "
                    "the one before it is won; progress is kept in SAVES/campaign.json.")
    parser.add_argument("--list", action="store_true",
                        help="print the levels and your progress instead of playing")
    parser.add_argument("--dir", default=str(CAMPAIGN), metavar="DIR",
                        help="the folder of levels (default: the bundled scenarios/campaign)")
    parser.add_argument("--saves", default="saves", metavar="DIR",
                        help="where progress is kept (default: saves/)")
    parser.set_defaults(func=cmd_campaign)
