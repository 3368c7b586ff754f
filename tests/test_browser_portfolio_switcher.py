"""The portfolio switcher in Debian's Chromium against the real server process: a student with a second portfolio
(CREATE_PORTFOLIO) switches to it in the top bar, and the order ticket, the orders view and the portfolio view all
follow the one choice: an order lands in the chosen portfolio only, and the choice survives a reload of the tab."""

import pytest

playwright_api = pytest.importorskip("playwright.sync_api")
expect = playwright_api.expect

from tests.test_browser_dashboard import (  # noqa: E402 (after the skip: these need Playwright too)
    base_url,  # noqa: F401 (the module's server fixture)
    place_order,
    screenshot,
    sign_in_as_guest,
)


def create_portfolio(page, name):
    """CREATE_PORTFOLIO over the page's own /ws/portfolio (the dashboard has no button for it): the new id."""
    return page.evaluate(
        "(name) => window.stockquest.channels.portfolio.request('CREATE_PORTFOLIO', {name})"
        ".then((reply) => reply.data.portfolio.portfolioId)", name)


def test_switching_portfolio_moves_the_ticket_orders_and_positions_to_it(new_page, base_url):  # noqa: F811
    page = new_page()
    sign_in_as_guest(page, base_url, "Switcher")
    switch = page.get_by_test_id("portfolio-switcher")
    expect(page.locator("#portfolio-switch")).to_be_hidden()   # one portfolio: nothing to choose
    first = page.evaluate("document.body.dataset.portfolioId")
    assert first

    second = create_portfolio(page, "Second fund")
    assert second != first
    expect(page.locator("#portfolio-switch")).to_be_visible()
    expect(switch.locator("option")).to_have_count(2)
    expect(switch.locator(f'option[value="{second}"]')).to_have_text(f"Second fund ({second})")
    expect(switch).to_have_value(first)   # creating one does not switch to it

    switch.select_option(second)
    expect(page.locator("body")).to_have_attribute("data-portfolio-id", second)
    page.click("#nav a[data-view=portfolio]")
    expect(page.locator('#portfolio-summary [data-key="Total value"] dd')).not_to_have_text("")
    expect(page.locator("#positions tbody tr")).to_have_count(0)

    place_order(page, "NVTX", quantity=3, note="switched to my second fund")
    expect(page.locator("#ticket-result")).to_contain_text("Order placed: BUY 3 NVTX")
    expect(page.locator("#ticket-result")).to_have_attribute("data-status", "FILLED")
    expect(page.locator('#order-history tr[data-status="FILLED"]')).to_have_count(1)
    page.click("#nav a[data-view=portfolio]")
    expect(page.locator('#positions tr[data-symbol="NVTX"] [data-f=quantity]')).to_have_text("3")
    screenshot(page, "portfolio-switcher-desktop")

    # the first portfolio saw nothing of it
    switch.select_option(first)
    expect(page.locator("body")).to_have_attribute("data-portfolio-id", first)
    expect(page.locator('#positions tr[data-symbol="NVTX"]')).to_have_count(0)
    page.click("#nav a[data-view=trade]")
    expect(page.locator("#order-history tbody tr")).to_have_count(0)
    expect(page.locator("#fills tbody tr")).to_have_count(0)

    # the choice is the tab's: a reload comes back to the same portfolio
    switch.select_option(second)
    expect(page.locator("body")).to_have_attribute("data-portfolio-id", second)
    page.reload()
    expect(page.locator("body")).to_have_attribute("data-portfolio-id", second)
    expect(page.get_by_test_id("portfolio-switcher")).to_have_value(second)
    page.click("#nav a[data-view=portfolio]")
    expect(page.locator('#positions tr[data-symbol="NVTX"] [data-f=quantity]')).to_have_text("3")
    assert page.errors == []
