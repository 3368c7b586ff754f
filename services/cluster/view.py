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

from realtime.hub import DURATION_BUCKETS

__all__ = ["ClusterView"]


@dataclass
class _Node:
    heard_at: float
    stats: dict | None = None
    counters: dict | None = None
    sessions: dict[str, tuple[str, str]] = field(default_factory=dict)  # session -> (user id, endpoint)


class ClusterView:
    def __init__(self, *, max_per_user: int, silent_s: float = 5.0, monotonic: Callable[[], float] = time.monotonic):
        self.max_per_user, self._silent_s, self._monotonic = max_per_user, silent_s, monotonic
        self._nodes: dict[str, _Node] = {}
        self._node_of: dict[str, str] = {}  # session -> node
        self._by_user: dict[tuple[str, str], set[str]] = defaultdict(set)  # (user id, endpoint) -> sessions

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

    def heard(self, node: str, stats: dict, counters: dict, sessions: list | None = None) -> None:
        """A process's statistics; with `sessions` ([session, user id, endpoint] each), all its signed-in
        connections, which replace what was known of it (sent to a new leader)."""
        entry = self._node(node)
        entry.heard_at, entry.stats, entry.counters = self._monotonic(), stats, counters
        if sessions is not None:
            for session in list(entry.sessions):
                self.unbind(session)
            for session, user_id, endpoint in sessions:
                self.bind(node, session, user_id, endpoint)

    def sweep(self) -> list[str]:
        """Forget the processes not heard from for `silent_s`, with their connections; returns their ids."""
        cutoff = self._monotonic() - self._silent_s
        gone = [node for node, entry in self._nodes.items() if entry.heard_at < cutoff]
        for node in gone:
            for session in list(self._nodes[node].sessions):
                self.unbind(session)
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
