"""Operations over HTTP: /healthz, /metrics (Prometheus), /api/stats and /api/metrics (the last hour, per second)."""

import math

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily

from domain.users import CLASS_ROLES
from realtime.protocol import iso_timestamp
from services.container import Services

from .http import ApiError, JsonHandler

__all__ = ["HealthHandler", "MetricsHandler", "MetricsSeriesHandler", "StatsHandler", "metrics_registry"]


class HealthHandler(JsonHandler):
    def get(self):
        """The market's figures where the engine runs; past one process, where it runs (here or elsewhere)."""
        services = self.services
        health = {"status": "ok", "connections": len(services.hub)}
        if services.market is not None:
            health.update(marketStatus=services.market.status, signalsWarmingUp=services.signals.cold_symbols)
        if services.engine_link is not None:
            link = services.engine_link  # as the connections were last told (SERVICE_STATUS)
            health.update(role=services.config.role, engine="here" if link.local else
                          "elsewhere" if link.announced["engine"] == "AVAILABLE" else "unavailable")
            if link.local and services.candidate is not None:
                health["fencingToken"] = services.candidate.leadership.token
        self.write_json({**health, "uptimeSeconds": round(services.clock.now() - services.started_at, 3),
                         "timestamp": iso_timestamp(services.clock.now())})


class StatsHandler(JsonHandler):
    """GET /api/stats: connection statistics, for teachers and admins."""

    engine_bound = True  # who may read them is the engine's to say

    def get(self):
        self.require_role(*CLASS_ROLES)
        hub, link = self.services.hub, self.services.engine_link
        if link is not None and link.view is not None:  # the engine, past one process: every process's figures
            self.write_json(link.view.stats(link.node, hub.stats(), hub.counters()))
        else:
            self.write_json(hub.stats())


class MetricsSeriesHandler(JsonHandler):
    """GET /api/metrics?since=<epoch seconds>: the per-second figures after `since` (default: the whole window),
    for teachers and admins; the metrics page asks for the hour once, then only for what is new."""

    engine_bound = True

    def get(self):
        self.require_role(*CLASS_ROLES)
        since = self.get_argument("since", None)
        if since is not None:
            try:
                since = float(since)
            except ValueError:
                raise ApiError(400, "since must be epoch seconds", code="BAD_REQUEST") from None
            if not math.isfinite(since):
                raise ApiError(400, "since must be epoch seconds", code="BAD_REQUEST")
        self.write_json({**self.services.metrics.series(since),
                         "timestamp": iso_timestamp(self.services.clock.now())})


def _histogram(name: str, documentation: str, labels: list[str], rows) -> HistogramMetricFamily:
    """A Prometheus histogram in seconds from (label values, Histogram in ms) rows."""
    family = HistogramMetricFamily(name, documentation, labels=labels)
    for values, histogram in rows:
        buckets = [(f"{bound / 1000:g}", count) for bound, count in histogram.cumulative()]
        buckets.append(("+Inf", histogram.count))
        family.add_metric(values, buckets, sum_value=histogram.sum_ms / 1000)
    return family


class _HubCollector:
    """Reads the hub's figures at scrape time, so nothing is counted twice."""

    def __init__(self, services: Services):
        self._services = services

    def collect(self):
        hub = self._services.hub
        stats = hub.stats()
        connections = GaugeMetricFamily("stockquest_connections", "Open connections by endpoint",
                                        labels=["endpoint"])
        for endpoint, count in stats["connectionsByType"].items():
            connections.add_metric([endpoint], count)
        yield connections
        yield GaugeMetricFamily("stockquest_users_connected", "Distinct signed-in users connected",
                                value=stats["uniqueUsers"])
        yield CounterMetricFamily("stockquest_messages_sent", "Messages sent to clients", value=hub.messages_sent)
        yield CounterMetricFamily("stockquest_messages_failed", "Messages that could not be sent",
                                  value=hub.messages_failed)
        yield CounterMetricFamily("stockquest_messages_received", "Messages received from clients",
                                  value=hub.messages_received)
        yield CounterMetricFamily("stockquest_errors_sent", "ERROR frames sent", value=hub.errors_sent)
        yield GaugeMetricFamily("stockquest_response_time_ms_average", "Average time to handle a client message",
                                value=stats["averageResponseTimeMs"])
        if self._services.market is not None:  # the engine runs here
            yield CounterMetricFamily("stockquest_market_ticks", "Market simulator ticks with changes",
                                      value=self._services.market.version)
        yield CounterMetricFamily("stockquest_slow_consumer_closes", "Connections closed 4008 for not reading",
                                  value=hub.slow_consumer_closes)
        metrics = self._services.metrics
        yield _histogram("stockquest_response_seconds", "Time to handle a client message, by message type",
                         ["type"], [([name], hist) for name, hist in sorted(metrics.response.items())])
        yield _histogram("stockquest_fanout_delay_seconds", "Quote frame sent, from its tick", [],
                         [([], metrics.fanout_delay)])
        link = self._services.engine_link
        if link is not None and link.view is not None:  # the engine leader: every process's figures
            cluster = link.view.stats(link.node, stats, hub.counters())
            by_node = GaugeMetricFamily("stockquest_cluster_connections", "Open connections of each server "
                                        "process of the cluster, as it last told the engine", labels=["node"])
            for entry in cluster["nodes"]:
                by_node.add_metric([entry["node"]], entry["connections"])
            yield by_node
            yield GaugeMetricFamily("stockquest_cluster_unique_users", "Signed-in users across the cluster",
                                    value=cluster["uniqueUsers"])
            yield CounterMetricFamily("stockquest_cluster_messages_sent", "Messages sent to clients by every process",
                                      value=cluster["messagesSent"])
            yield CounterMetricFamily("stockquest_cluster_messages_received", "Messages received by every process",
                                      value=cluster["messagesReceived"])
        yield _histogram("stockquest_order_ack_seconds", "SUBMIT_ORDER received to its ORDER_SUBMITTED or "
                         "ORDER_REJECTED published (after the group commit)", [], [([], metrics.order_ack)])
        logs = self._services.logs
        dropped = CounterMetricFamily("stockquest_log_records_dropped", "Log stream records not sent, by reason",
                                      labels=["reason"])
        dropped.add_metric(["rate_cap"], logs.dropped_rate)
        dropped.add_metric(["slow_reader"], logs.dropped_backlog)
        yield dropped


def metrics_registry(services: Services) -> CollectorRegistry:
    """A registry of this application's own (no process-global state, so each test app has its own)."""
    registry = CollectorRegistry(auto_describe=True)
    registry.register(_HubCollector(services))
    return registry


class MetricsHandler(JsonHandler):
    def initialize(self, services: Services, registry: CollectorRegistry):
        super().initialize(services)
        self.registry = registry

    def get(self):
        self.set_header("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
        self.finish(generate_latest(self.registry))
