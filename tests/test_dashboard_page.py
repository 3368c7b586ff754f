"""The dashboard's page states this server's order rules and class roles, which the page's own checks read."""

import re

import pytest
import ujson

pytestmark = pytest.mark.gen_test(timeout=20)

STATED = re.compile(r'<script type="application/json" id="server-config">(.*?)</script>', re.S)


@pytest.fixture
def config_overrides():
    return {"allow_short": True}


async def test_the_page_states_the_servers_order_rules_and_class_roles(http_client, base_url, services):
    page = (await http_client.fetch(base_url + "/")).body.decode()
    stated = ujson.loads(STATED.search(page).group(1))
    rules = services.trading.rules
    assert stated == {
        "orders": {"maxQuantity": rules.max_quantity, "maxPrice": rules.max_price_cents / 100,
                   "marketBuffer": float(rules.market_buffer), "allowShort": True},
        "classRoles": ["teacher", "admin"],
    }


async def test_the_page_runs_only_its_own_scripts_and_is_never_framed(http_client, base_url):
    response = await http_client.fetch(base_url + "/")
    policy = dict(part.strip().split(" ", 1) for part in response.headers["Content-Security-Policy"].split(";"))
    assert policy["script-src"] == "'self'" and policy["frame-ancestors"] == "'none'"
    assert policy["connect-src"] == "'self'" and policy["object-src"] == "'none'"
    assert response.headers["X-Content-Type-Options"] == "nosniff" and response.headers["X-Frame-Options"] == "DENY"
    script = await http_client.fetch(base_url + "/static/js/main.js")
    assert script.headers["X-Content-Type-Options"] == "nosniff"
