"""/ws/admin: the live log stream (admins only) and the per-second metrics (teachers and admins)."""

import re

from domain.errors import BadRequest, Forbidden
from domain.users import CLASS_ROLES, Role
from realtime.schema import Number, Str
from services.logstream import LEVELS, known_logger

from .base import Endpoint, Reply, handles

__all__ = ["AdminEndpoint"]

_LOGGER_NAME = re.compile(r"[A-Za-z0-9_.\-]{1,100}\Z")


class AdminEndpoint(Endpoint):
    """One operator's session: the log records it streams (SUBSCRIBE_LOGS) and the metrics it reads.

    Any signed-in user may connect; what each message needs is checked against the role stored now. An admin
    demoted while streaming stops hearing records within a second (`review_role`).
    """

    name = "admin"
    auth_required = True
    runs_on_gateway = True  # the logs and metrics of the process the connection is on

    @property
    def logs(self):
        return self.services.logs

    def _require(self, roles, what: str) -> None:
        if self.stored_role() not in roles:
            raise Forbidden(what)

    @handles("SUBSCRIBE_LOGS", level=Str(default="INFO", upper=True, choices=tuple(LEVELS)), logger=Str(max_len=100))
    def subscribe_logs(self, level, logger):
        self._require({Role.ADMIN}, "the log stream is for admins")
        logger = logger or ""
        if logger in ("root", "*"):
            logger = ""
        if logger and (not _LOGGER_NAME.match(logger) or not known_logger(logger)):
            raise BadRequest(f"unknown logger {logger[:100]!r}: name one of this server's loggers (e.g. stockquest, "
                             "handlers, services, realtime, tornado) or leave it out for all")
        self.logs.subscribe(self, LEVELS[level], logger)
        self.role_grants.add("logs")  # reviewed every second: see review_role
        return Reply("SUBSCRIPTION_CONFIRMED", {"action": "SUBSCRIBE", "level": level, "logger": logger or None,
                                                "ratePerSecond": self.logs.rate_per_s})

    @handles("UNSUBSCRIBE_LOGS")
    def unsubscribe_logs(self):
        self.logs.unsubscribe(self)
        self.role_grants.discard("logs")
        return Reply("SUBSCRIPTION_CONFIRMED", {"action": "UNSUBSCRIBE"})

    @handles("REQUEST_METRICS", since=Number(min=0))
    def request_metrics(self, since):
        self._require(CLASS_ROLES, "metrics are for teachers and admins")
        return Reply("METRICS", self.services.metrics.series(since))

    def review_role(self, role) -> None:
        """An admin who is one no longer stops streaming at once, not only on their next request."""
        self._role = role
        if "logs" not in self.role_grants or not self.logs.subscribed(self):
            self.role_grants.discard("logs")
            return
        if role == Role.ADMIN:
            return
        self.logs.unsubscribe(self)
        self.role_grants.discard("logs")
        self.log.info("role no longer allows the log stream; ended")
        self.send_error("FORBIDDEN", "your role changed: the log stream ended", None, None)

    def finish(self) -> None:
        self.logs.unsubscribe(self)
        super().finish()
