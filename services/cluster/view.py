"""The engine's view of the whole cluster: every process's signed-in connections (so per-user limits hold across
gateways) and its latest connection statistics (so /api/stats counts every gateway).

Gateways tell the engine when a connection signs in (the token check is a call to the engine, which binds it here)
and when it ends, and once a second send their statistics. A process silent for `silent_s` is forgotten with its
connections (it died: its clients reconnect elsewhere). A new leader starts empty; each gateway, on hearing a new
leader, sends its signed-in connections again with its next statistics.
"""

import time
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field

from realtime.hub import DURATION_BUCKETS, channel_prefixes

__all__ = ["ClusterView"]


@dataclass
class _Node:
    heard_at: float
    stats: dict | None = None
    counters: dict | None = None
    sessions: dict[str, tuple[str, str]] = field(default_factory=dict)  # session -> (user id, endpoint)
    channels: set[str] = field(default_factory=set)  # the hub channels its connections hold


class ClusterView:
    def __init__(self, *, max_per_user: int, silent_s: float = 5.0, monotonic: Callable[[], float] = time.monotonic):
        self.max_per_user, self._silent_s, self._monotonic = max_per_user, silent_s, monotonic
        self._nodes: dict[str, _Node] = {}
        self._node_of: dict[str, str] = {}  # session -> node
        self._by_user: dict[tuple[str, str], set[str]] = defaultdict(set)  # (user id, endpoint) -> sessions
        self._holders: dict[str, set[str]] = {}  # channel -> the nodes holding it
        self._under: dict[str, set[str]] = {}  # "portfolio:17:" -> the channels named under it, on any node

    def _node(self, node: str) -> _Node:
        entry = self._nodes.get(node)
        if entry is None:
            entry = self._nodes[node] = _Node(self._monotonic())
        return entry

    def bind(self, node: str, session: str, user_id: str, endpoint: str) -> bool:
        """Count `session` as `user_id`'s on `endpoint`; False (nothing counted) past the per-user limit."""
        same = self._by_user[(user_id, endpoint)]
        if session not in same and len(same) >= self.max_per_user:
            return False
        self.unbind(session)
        same.add(session)
        self._node(node).sessions[session] = (user_id, endpoint)
        self._node_of[session] = node
        return True

    def unbind(self, session: str) -> None:
        node = self._node_of.pop(session, None)
        if node is None:
            return
        user_id, endpoint = self._nodes[node].sessions.pop(session)
        sessions = self._by_user[(user_id, endpoint)]
        sessions.discard(session)
        if not sessions:
            del self._by_user[(user_id, endpoint)]

    def heard(self, node: str, stats: dict, counters: dict, sessions: list | None = None,
              channels: dict | None = None) -> None:
        """A process's statistics; with `sessions` ([session, user id, endpoint] each), all its signed-in
        connections, which replace what was known of it (sent to a new leader). `channels`: {"held": [...],
        "dropped": [...]} since it last told, or {"all": [...]} to a new leader."""
        entry = self._node(node)
        entry.heard_at, entry.stats, entry.counters = self._monotonic(), stats, counters
        if sessions is not None:
            for session in list(entry.sessions):
                self.unbind(session)
            for session, user_id, endpoint in sessions:
                self.bind(node, session, user_id, endpoint)
        if channels is not None:
            if "all" in channels:
                for channel in entry.channels - set(channels["all"]):
                    self._release(node, channel)
                held = channels["all"]
            else:
                for channel in channels.get("dropped", ()):
                    self._release(node, channel)
                held = channels.get("held", ())
            for channel in held:
                self.hold(node, channel)

    def hold(self, node: str, channel: str) -> None:
        """`node`'s connections hold `channel`: the engine's services publish to it (see `channels`)."""
        entry = self._node(node)
        if channel in entry.channels:
            return
        entry.channels.add(channel)
        nodes = self._holders.get(channel)
        if nodes is None:
            nodes = self._holders[channel] = set()
            for prefix in channel_prefixes(channel):
                self._under.setdefault(prefix, set()).add(channel)
        nodes.add(node)

    def _release(self, node: str, channel: str) -> None:
        entry = self._nodes.get(node)
        if entry is None or channel not in entry.channels:
            return
        entry.channels.discard(channel)
        nodes = self._holders[channel]
        nodes.discard(node)
        if nodes:
            return
        del self._holders[channel]
        for prefix in channel_prefixes(channel):
            names = self._under[prefix]
            names.discard(channel)
            if not names:
                del self._under[prefix]

    def channels(self, prefix: str) -> set[str]:
        """The channels under `prefix` that some other process's connections hold."""
        return self._under.get(prefix, set())

    def sweep(self) -> list[str]:
        """Forget the processes not heard from for `silent_s`, with their connections; returns their ids."""
        cutoff = self._monotonic() - self._silent_s
        gone = [node for node, entry in self._nodes.items() if entry.heard_at < cutoff]
        for node in gone:
            for session in list(self._nodes[node].sessions):
                self.unbind(session)
            for channel in list(self._nodes[node].channels):
                self._release(node, channel)
            del self._nodes[node]
        return gone

    def stats(self, node: str, own: dict, own_counters: dict) -> dict:
        """/api/stats for the whole cluster: this process's (`own`) and every other live one's, added up."""
        parts = [(node, own, own_counters)] + [(name, entry.stats, entry.counters) for name, entry in
                                               self._nodes.items() if name != node and entry.stats is not None]
        total = sum(stats["totalConnections"] for _, stats, _ in parts)
        by_type, by_duration = Counter(), Counter()
        for _, stats, _ in parts:
            by_type.update(stats["connectionsByType"])
            by_duration.update(stats["connectionsByDuration"])
        sent = sum(c["messagesOut"] for _, _, c in parts)
        failed = sum(c["messagesFailed"] for _, _, c in parts)
        received = sum(c["messagesIn"] for _, _, c in parts)
        errors = sum(c["errors"] for _, _, c in parts)

        def weighted(key: str, weight) -> float:
            weights = [weight(stats, counters) for _, stats, counters in parts]
            if not sum(weights):
                return 0.0
            return round(sum(w * stats[key] for w, (_, stats, _) in zip(weights, parts, strict=True)) / sum(weights), 3)

        return {
            **own,
            "totalConnections": total,
            "uniqueUsers": len({user for user, _ in self._by_user}),
            "connectionsByType": dict(sorted(by_type.items())),
            "connectionsByDuration": {label: by_duration.get(label, 0) for _, label in DURATION_BUCKETS},
            "averageConnectionDuration": weighted("averageConnectionDuration", lambda s, c: s["totalConnections"]),
            "messagesSent": sent,
            "messagesFailed": failed,
            "messagesReceived": received,
            "sendSuccessRate": round(sent / (sent + failed), 6) if sent + failed else 1.0,
            "averageResponseTimeMs": weighted("averageResponseTimeMs", lambda s, c: c["messagesIn"]),
            "errorRate": round(errors / received, 6) if received else 0.0,
            "nodes": [{"node": name, "connections": stats["totalConnections"]} for name, stats, _ in parts],
        }
