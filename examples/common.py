"""What every example bot shares: its command line, signing in, and a log of its fills."""

import argparse
import asyncio
import logging
import os

from stockquest_client import Client, ExecutionReport, Subscription

__all__ = ["parser", "sign_in", "FillLog"]


def parser(description: str) -> argparse.ArgumentParser:
    """--url, --username/--password or --guest, --duration: the options every example takes."""
    options = argparse.ArgumentParser(description=description)
    options.add_argument("--url", default="http://127.0.0.1:8080", help="the server (default %(default)s)")
    who = options.add_mutually_exclusive_group(required=True)
    who.add_argument("--username", help="log in as this user (password from --password or STOCKQUEST_PASSWORD)")
    who.add_argument("--guest", action="store_true", help="sign in as a new guest")
    options.add_argument("--password", default=os.environ.get("STOCKQUEST_PASSWORD"))
    options.add_argument("--duration", type=float, default=60.0, help="seconds to run (default %(default)s)")
    options.add_argument("--verbose", action="store_true")
    return options


async def sign_in(args: argparse.Namespace, nickname: str) -> Client:
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(asctime)s %(name)s: %(message)s")
    if args.guest:
        return await Client.guest(args.url, nickname=nickname)
    if not args.password:
        raise SystemExit("--username needs --password (or STOCKQUEST_PASSWORD)")
    return await Client.login(args.url, args.username, args.password)


class FillLog:
    """Collects the bot's fills as they happen, from the order event stream, in a background task."""

    def __init__(self, client: Client):
        self.fills: list[ExecutionReport] = []
        self._events: Subscription = client.orders.events()  # listening from now: no fill is missed
        self._task = asyncio.get_running_loop().create_task(self._collect())

    async def _collect(self) -> None:
        async for event in self._events:
            if event.execution is not None:
                self.fills.append(event.execution)
                fill = event.execution
                print(f"filled {fill.side} {fill.fill_quantity} {fill.symbol} @ {fill.fill_price}")

    async def stop(self) -> list[ExecutionReport]:
        await self._events.aclose()
        await self._task
        return self.fills
