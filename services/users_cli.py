"""Operator command line for accounts: `user add`, `user set-role`, `user batch`, and a class contest's logins
(`contest list`, `contest accounts`), safe while the server runs.

Each command names the server's database: `--data-dir DIR` (its SQLite file) or `--database-url URL` (PostgreSQL).
"""

from __future__ import annotations

import argparse
import csv
import sqlite3
from pathlib import Path
from typing import NoReturn, TextIO

from domain.clock import SystemClock
from domain.contests import ContestStatus, Moment, Roster, parse_join_code
from domain.errors import BadRequest, DomainError, NotFound
from domain.money import to_cents
from domain.users import Role, UsernameTaken
from services.auth import hash_password, validate_password, validate_username
from services.class_accounts import MAX_ACCOUNTS, ClassAccount, account_names, readable_password, sheet_html
from services.config import Config
from services.storage import DB_FILENAME, StorageError, open_storage

__all__ = ["run"]

_ROLES = [role.value for role in Role]


class _UsageError(Exception):
    """A command line argparse refused; the message is one line."""


class _Exit(Exception):
    """argparse finished early (after --help) with this status."""

    def __init__(self, status: int):
        super().__init__(status)
        self.status = status


class _NoPassword(DomainError):
    """Standard input ended before a password line."""


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser that writes to the given streams and never calls sys.exit."""

    def __init__(self, *args, stdout: TextIO, **kwargs):
        super().__init__(*args, **kwargs)
        self._stdout = stdout

    def _print_message(self, message: str, file: TextIO | None = None) -> None:
        if message:
            self._stdout.write(message)

    def exit(self, status: int = 0, message: str | None = None) -> NoReturn:
        if status:
            raise _UsageError((message or "").strip())
        raise _Exit(status)

    def error(self, message: str) -> NoReturn:
        raise _UsageError(message)


def _parser(stdout: TextIO) -> _Parser:
    parser = _Parser(prog="stockquest user", description="Manage Stock Quest accounts.", stdout=stdout)
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    add = commands.add_parser(
        "add",
        help="create a user; the password is read as one line from standard input",
        stdout=stdout,
    )
    set_role = commands.add_parser("set-role", help="change a user's role", stdout=stdout)
    for command in (add, set_role):
        command.add_argument("username")
        command.add_argument("--role", required=True, choices=_ROLES)
    batch = commands.add_parser(
        "batch", stdout=stdout,
        help="create a class's students (PREFIX01, PREFIX02, ...) with readable first passwords; prints them as "
             "CSV, and --sheet writes a page of cards to print")
    batch.add_argument("--prefix", required=True, help="the usernames' start, e.g. knights")
    batch.add_argument("--count", required=True, type=int, help=f"how many (1 to {MAX_ACCOUNTS})")
    batch.add_argument("--sheet", type=Path, help="write the printable sheet (HTML) here")
    batch.add_argument("--title", default="Stock Quest", help="the class's name on the cards")
    batch.add_argument("--login-url", help="where the students log in, printed on the cards")
    for command in (add, set_role, batch):
        _add_database(command)
    return parser


def _add_database(command: argparse.ArgumentParser) -> None:
    where = command.add_mutually_exclusive_group(required=True)
    where.add_argument("--data-dir", type=Path, help="the server's data folder (its SQLite database)")
    where.add_argument("--database-url", help="the server's PostgreSQL database, postgresql://...")


def _contest_parser(stdout: TextIO) -> _Parser:
    parser = _Parser(prog="stockquest contest", description="A class contest's logins.", stdout=stdout)
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    listing = commands.add_parser("list", help="every contest: id, join code, status, players, name", stdout=stdout)
    accounts = commands.add_parser(
        "accounts", stdout=stdout,
        help="create students (PREFIX01, PREFIX02, ...) already in the contest, under their usernames, with readable "
             "first passwords; prints them as CSV, and --sheet writes a page of cards to print")
    accounts.add_argument("contest", help="the contest's id or join code (stockquest contest list)")
    accounts.add_argument("--prefix", required=True, help="the usernames' start, e.g. knights")
    accounts.add_argument("--count", required=True, type=int, help=f"how many (1 to {MAX_ACCOUNTS})")
    accounts.add_argument("--sheet", type=Path, help="write the printable sheet (HTML) here")
    accounts.add_argument("--login-url", help="where the students log in, printed on the cards")
    for command in (listing, accounts):
        _add_database(command)
    return parser


def run(argv: list[str], *, stdin: TextIO, stdout: TextIO, stderr: TextIO) -> int:
    """Run `user add ...` or `user set-role ...` (the leading "user" is optional); return the exit status.

    Success prints one line to `stdout` and returns 0; a refusal prints one line
    to `stderr` and returns 1 (2 for a malformed command line).

    >>> import io
    >>> run(["user", "set-role", "ada", "--role", "boss", "--data-dir", "x"],
    ...     stdin=io.StringIO(), stdout=io.StringIO(), stderr=io.StringIO())
    2
    """
    argv = list(argv)
    group = "user"
    if argv[:1] in (["user"], ["contest"]):
        group, argv = argv[0], argv[1:]
    try:
        args = (_parser if group == "user" else _contest_parser)(stdout).parse_args(argv)
    except _Exit as done:
        return done.status
    except _UsageError as error:
        _say(stderr, f"error: {error}")
        return 2
    try:
        if group == "contest":
            line = _contest_accounts(args, stdout) if args.command == "accounts" else _contest_list(args, stdout)
        elif args.command == "add":
            line = _add(args, stdin)
        elif args.command == "batch":
            line = _batch(args, stdout)
        else:
            line = _set_role(args)
    except (DomainError, StorageError) as error:
        _say(stderr, f"error: {getattr(error, 'message', error)}")
        return 1
    except (sqlite3.Error, OSError) as error:  # SQLite's file (PostgreSQL's errors are StorageErrors)
        _say(stderr, f"error: cannot use the database in {args.data_dir}: {error}")
        return 1
    _say(stderr if args.command in ("batch", "accounts", "list") else stdout, line)  # their stdout is the table
    return 0


def _add(args: argparse.Namespace, stdin: TextIO) -> str:
    username = validate_username(args.username)
    password = validate_password(_read_password(stdin))
    config = Config()
    password_hash = hash_password(password, n=config.password_hash_n)
    with open_storage(SystemClock(), data_dir=args.data_dir, database_url=args.database_url) as storage:
        user = storage.create_user(
            username, username, password_hash, Role(args.role), to_cents(config.starting_cash)
        )
    return f"created user {user.username} ({user.role.value})"


def _batch(args: argparse.Namespace, stdout: TextIO) -> str:
    """Create every account or none: all names are checked free first (a clash names the taken one)."""
    try:
        names = account_names(args.prefix, args.count)
    except ValueError as error:
        raise BadRequest(str(error)) from None
    config = Config()
    accounts = [ClassAccount(name, readable_password()) for name in names]
    with open_storage(SystemClock(), data_dir=args.data_dir, database_url=args.database_url) as storage:
        taken = [name for name in names if storage.user_by_name(name) is not None]
        if taken:
            raise UsernameTaken(f"{len(taken)} of these names are taken already (first: {taken[0]}); "
                                "choose another --prefix")
        for account in accounts:
            storage.create_user(account.username, account.username,
                                hash_password(account.password, n=config.password_hash_n), Role.STUDENT,
                                to_cents(config.starting_cash))
    return _hand_out(accounts, args, stdout, title=args.title)


def _find_contest(storage, key: str):
    """A contest by its id or its join code (any case, with or without the dash)."""
    contests = storage.contests()
    by_id = next((c for c in contests if c.contest_id == key.strip()), None)
    if by_id is not None:
        return by_id
    try:
        code = parse_join_code(key)
    except BadRequest:
        code = None
    found = next((c for c in contests if c.join_code == code), None)
    if found is None:
        raise NotFound(f"no contest has the id or join code {key!r} (see: stockquest contest list)")
    return found


def _contest_list(args: argparse.Namespace, stdout: TextIO) -> str:
    with open_storage(SystemClock(), data_dir=args.data_dir, database_url=args.database_url) as storage:
        contests, rosters = storage.contests(), storage.rosters()
    table = csv.writer(stdout, lineterminator="\n")
    table.writerow(["id", "join_code", "status", "players", "name"])
    table.writerows([c.contest_id, c.join_code, c.status, len(rosters.get(c.contest_id, ([], []))[0]), c.name]
                    for c in contests)
    return f"{len(contests)} contests"


def _contest_accounts(args: argparse.Namespace, stdout: TextIO) -> str:
    """`_batch`, each student then joined to the contest under their username (with their own portfolio of its
    starting cash, unless it is played in teams); all names are checked first. The running server sees them within
    seconds (it reads its contests' rosters again)."""
    try:
        names = account_names(args.prefix, args.count)
    except ValueError as error:
        raise BadRequest(str(error)) from None
    config = Config()
    clock = SystemClock()
    with open_storage(clock, data_dir=args.data_dir, database_url=args.database_url) as storage:
        contest = _find_contest(storage, args.contest)
        if contest.status is ContestStatus.FINISHED:
            raise BadRequest(f'the contest "{contest.name}" has ended')
        roster = Roster(contest.contest_id, *storage.rosters().get(contest.contest_id, ([], [])))
        taken = [name for name in names if storage.user_by_name(name) is not None]
        if taken:
            raise UsernameTaken(f"{len(taken)} of these names are taken already (first: {taken[0]}); "
                                "choose another --prefix")
        moment = Moment(clock.now_ms(), -1)  # only whether it has ended matters here: the stored status says
        for name in names:
            roster.admit(contest, user_id=f"new:{name}", nickname=name, password=None,
                         verify_password=None, moment=moment)
        accounts = [ClassAccount(name, readable_password()) for name in names]
        for account in accounts:
            user = storage.create_user(account.username, account.username,
                                       hash_password(account.password, n=config.password_hash_n), Role.STUDENT,
                                       to_cents(config.starting_cash))
            portfolio = None if contest.rules.teams else (f"{contest.name[:40]} ({account.username})",
                                                          contest.rules.starting_cash_cents)
            storage.join_contest(contest.contest_id, user_id=str(user.id), nickname=account.username,
                                 joined_ms=clock.now_ms(), portfolio=portfolio)
    return _hand_out(accounts, args, stdout, title=contest.name, where=f' in "{contest.name}" ({contest.join_code})')


def _hand_out(accounts: list[ClassAccount], args: argparse.Namespace, stdout: TextIO, *, title: str,
              where: str = "") -> str:
    """The new logins as CSV on stdout and, with --sheet, on a page of cards to print; the line to say."""
    stdout.write("username,password\n" + "".join(f"{a.username},{a.password}\n" for a in accounts))
    if args.sheet is not None:
        args.sheet.write_text(sheet_html(accounts, title=title, login_url=args.login_url), encoding="utf-8")
        args.sheet.chmod(0o600)  # the passwords are in it
    return f"created {len(accounts)} students {accounts[0].username}..{accounts[-1].username}{where}" + (
        f"; the sheet to print is {args.sheet}" if args.sheet is not None else "")


def _set_role(args: argparse.Namespace) -> str:
    if args.data_dir is not None and not (args.data_dir / DB_FILENAME).is_file():
        raise StorageError(f"no Stock Quest database in {args.data_dir}")
    with open_storage(SystemClock(), data_dir=args.data_dir, database_url=args.database_url) as storage:
        user = storage.set_role(args.username, Role(args.role))
    return f"user {user.username} is now {user.role.value}"


def _read_password(stdin: TextIO) -> str:
    line = stdin.readline()
    if not line:
        raise _NoPassword("no password on standard input (send it as one line)")
    # One line: the newline ends it, and a carriage return from a Windows pipe goes too.
    return line.removesuffix("\n").removesuffix("\r")


def _say(stream: TextIO, line: str) -> None:
    # Exactly one line whatever the message holds (argparse and sqlite messages may contain newlines).
    stream.write(" ".join(line.split()) + "\n")
    stream.flush()
