"""Accounts for a class: numbered logins with readable first passwords, and a sheet to print and hand out.

A teacher prints the sheet, cuts it into cards and gives one to each student, who logs in and may change the
password (POST /api/auth/password, the dashboard's account bar). Passwords are two short words and two digits
("maple-otter-42"): easy to type from paper, about 23 bits from `secrets`, and the login throttle stands behind them.
"""

import html
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["ClassAccount", "account_names", "readable_password", "sheet_html", "MAX_ACCOUNTS"]

MAX_ACCOUNTS = 200
_PREFIX = re.compile(r"[A-Za-z][A-Za-z0-9_.-]{0,23}\Z")

# Short, distinct, easy to spell words; no two that sound alike, nothing rude.
WORDS = (
    "acorn amber anchor apple arrow aspen atlas badge bagel baker bamboo banjo basil beacon berry birch bison "
    "blaze bloom bolt brave breeze brick brook bubble cabin cactus camel candle canoe canyon cargo carrot castle "
    "cedar cello chalk cherry chess cider clover cobalt comet coral cotton crane crater cricket crystal daisy delta "
    "denim desert dolphin dragon drum eagle echo ember falcon fern fiddle flint forest fossil fox galaxy garnet "
    "gecko ginger glacier globe goose granite grape gravel harbor hazel hedge heron honey icicle igloo indigo iris "
    "island ivy jacket jade jasper jelly jungle kayak kettle kiwi koala ladder lagoon lantern lemon lilac lily "
    "lobster lotus magnet mango maple marble meadow melon meteor mint mocha moose mosaic nectar needle nickel "
    "nutmeg oak oasis olive onyx orbit otter owl paddle panda papaya parrot pebble pepper piano pickle pilot pine "
    "planet plum pollen pony prism puffin pumpkin quartz quill rabbit radar raven reef ribbon river robin rocket "
    "saddle saffron salmon sapphire satin scarf shell sierra silver sketch sparrow spruce squid stone summit "
    "sunset swan tango teal thistle thunder tiger timber topaz torch tulip tundra turtle velvet violet walnut "
    "walrus willow window winter wizard yak yarrow zebra zephyr"
).split()


@dataclass(frozen=True)
class ClassAccount:
    username: str
    password: str


def account_names(prefix: str, count: int) -> list[str]:
    """`prefix` numbered from 1 to `count`, zero-padded to the same width (knights01 .. knights30)."""
    if not _PREFIX.match(prefix or ""):
        raise ValueError("the prefix is 1-24 letters, digits, _ . or -, starting with a letter")
    if not 1 <= count <= MAX_ACCOUNTS:
        raise ValueError(f"the count is 1 to {MAX_ACCOUNTS}")
    width = max(2, len(str(count)))
    return [f"{prefix}{number:0{width}d}" for number in range(1, count + 1)]


def readable_password() -> str:
    first, second = secrets.choice(WORDS), secrets.choice(WORDS)
    while second == first:
        second = secrets.choice(WORDS)
    return f"{first}-{second}-{secrets.randbelow(90) + 10}"


def sheet_html(accounts: Sequence[ClassAccount], *, title: str, login_url: str | None = None) -> str:
    """A page of cards, one per account, laid out to print (cut along the dashed lines); nothing to load."""
    where = (f"<p class='where'>Log in at <strong>{html.escape(login_url)}</strong></p>" if login_url else "")
    cards = "\n".join(
        f"<section class='card'><h2>{html.escape(title)}</h2>{where}"
        f"<p>Username <code>{html.escape(a.username)}</code></p>"
        f"<p>Password <code>{html.escape(a.password)}</code></p>"
        "<p class='hint'>Change it once you are in: Password, at the top right.</p></section>"
        for a in accounts)
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}: logins</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 1rem; color: #111; }}
.cards {{ display: grid; grid-template-columns: repeat(3, 1fr); gap: 0; }}
.card {{ border: 1px dashed #888; padding: .8rem 1rem; break-inside: avoid; }}
.card h2 {{ font-size: 1rem; margin: 0 0 .4rem; }}
.card p {{ margin: .2rem 0; }}
.card code {{ font-size: 1.15rem; font-weight: 600; letter-spacing: .02em; }}
.hint, .where {{ font-size: .8rem; color: #444; }}
@media print {{ body {{ margin: 0; }} .noprint {{ display: none; }} @page {{ margin: 1cm; }} }}
</style></head>
<body><p class="noprint">{len(accounts)} logins for {html.escape(title)}. Print this page, cut along the dashed
lines, and give each student one card. The passwords are shown only here: keep the sheet safe.</p>
<div class="cards">
{cards}
</div></body></html>
"""
