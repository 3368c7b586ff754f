"""The latest news, as every process knows it: what a market-data connection is sent first (NEWS_HISTORY).

The engine's ScenarioService publishes the history on the broker whenever it changes (and every few seconds, for a
process that started since); every process keeps the last one. So a connection opening on a gateway is sent the
history without a call to the engine, and while the engine is away too.
"""

from realtime.broker import Broker

__all__ = ["NEWS_HISTORY", "NewsBoard"]

NEWS_HISTORY = "news.history"
"""The broker channel: b"<latest news id> <NEWS_HISTORY data JSON>"."""


class NewsBoard:
    def __init__(self, broker: Broker):
        self._broker = broker
        self._latest: tuple[int, str] | None = None
        broker.subscribe(NEWS_HISTORY, self._heard)

    def latest(self) -> tuple[int, str] | None:
        """(the latest news id, NEWS_HISTORY data JSON), or None before any news."""
        return self._latest

    def publish(self, last_id: int, data_json: str) -> None:
        self._latest = (last_id, data_json)  # here at once; the other processes when the broker delivers
        self._broker.publish(NEWS_HISTORY, f"{last_id} {data_json}".encode())

    def _heard(self, _channel: str, message: bytes) -> None:
        last_id, _, data_json = message.decode().partition(" ")
        if self._latest is None or int(last_id) >= self._latest[0]:
            self._latest = (int(last_id), data_json)
