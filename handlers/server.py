"""The HTTP server: who a request comes from behind a trusted proxy, and how long a slow client may hold a socket."""

import ipaddress

import tornado.httpserver
import tornado.web

from services.config import Config

__all__ = ["ProxyAwareServer", "make_server", "proxy_network"]


def proxy_network(text: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    """A --trusted-proxy value: an address (127.0.0.1, ::1) or a network (10.0.0.0/8); ValueError otherwise."""
    return ipaddress.ip_network(text.strip(), strict=False)


class ProxyAwareServer(tornado.httpserver.HTTPServer):
    """Believes X-Forwarded-For, X-Real-Ip and X-Forwarded-Proto only from the configured proxies.

    Tornado's `xheaders` believes them from anyone, so any client could choose the address that per-address
    limits and logs see. Here a request's forwarding headers apply only when its peer is a trusted proxy; in
    the X-Forwarded-For chain, hops that are trusted addresses are skipped (Tornado's `trusted_downstream`).
    """

    def initialize(self, request_callback, *, trusted_proxies=(), **kwargs) -> None:
        self.trusted_networks = [proxy_network(proxy) for proxy in trusted_proxies]
        hops = [str(network.network_address) for network in self.trusted_networks if network.num_addresses == 1]
        super().initialize(request_callback, xheaders=False, trusted_downstream=hops, **kwargs)

    def trusts(self, peer: str) -> bool:
        if not self.trusted_networks:  # the default: no parsing of an address per request
            return False
        try:
            address = ipaddress.ip_address(peer)
        except ValueError:  # a Unix socket's peer has no address
            return False
        return any(address in network for network in self.trusted_networks)

    def start_request(self, server_conn, request_conn):
        # Read once per request, before its headers arrive; the peer is the connection's, not a forwarded one.
        self.xheaders = self.trusts(request_conn.context.remote_ip)
        return super().start_request(server_conn, request_conn)


def make_server(app: tornado.web.Application, config: Config, *, max_body_size: int) -> ProxyAwareServer:
    """The server for `app`: a half-sent request is dropped after `config.header_timeout_s` (Tornado waits an hour)."""
    return ProxyAwareServer(app, trusted_proxies=config.trusted_proxies, max_body_size=max_body_size,
                            idle_connection_timeout=config.header_timeout_s, body_timeout=config.body_timeout_s)
