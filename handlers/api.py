"""Operations over HTTP: /healthz, /metrics (Prometheus) and /api/stats."""

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from domain.users import CLASS_ROLES
from realtime.protocol import iso_timestamp
from services.container import Services

from .http import JsonHandler

__all__ = ["HealthHandler", "MetricsHandler", "StatsHandler", "metrics_registry"]


class HealthHandler(JsonHandler):
    def get(self):
        services = self.services
        self.write_json({
            "status": "ok",
            "connections": len(services.hub),
            "marketStatus": services.market.status,
            "signalsWarmingUp": services.signals.cold_symbols,
            "uptimeSeconds": round(services.clock.now() - services.started_at, 3),
            "timestamp": iso_timestamp(services.clock.now()),
        })


class StatsHandler(JsonHandler):
    """GET /api/stats: connection statistics, for teachers and admins."""

    def get(self):
        self.require_role(*CLASS_ROLES)
        self.write_json(self.services.hub.stats())


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
        yield CounterMetricFamily("stockquest_market_ticks", "Market simulator ticks with changes",
                                  value=self._services.market.version)


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
