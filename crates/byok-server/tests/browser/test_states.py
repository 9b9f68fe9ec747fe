"""Every state a tenant can be in, as its customer and the operator see it, in headless Chromium.

Driven by crates/byok-server/tests/console_browser.rs, which puts one tenant in each state
(onboarding, active, suspended under review, revoked, restoring, revoked with less than 24 hours
left, deadline passed, destroyed) with the broker's manual clock and serves the console under the
product name $PRODUCT. Here: each tenant's admin signs in and reads the overview and the ticket at
desktop and phone width, light and dark: the state's own words, the watched state, no page wider
than the viewport, axe-core's 0 violations of any impact, no "byok" brand. The operator reads the
tiles (one tenant per state), each state's filter, and each tenant's overview the same way.
"""

import json
import os

from playwright.sync_api import sync_playwright

URL = os.environ["BYOK_URL"]
SHOTS = os.environ["SCREENSHOTS"]
AXE = open(os.environ["AXE_JS"]).read()
TENANTS = json.loads(os.environ["TENANTS"])
PRODUCT = os.environ["PRODUCT"]
VIEWS = [(1100, 900, "light"), (1100, 900, "dark"), (390, 844, "light"), (390, 844, "dark")]


def accessible(page, name):
    # axe runs through the DevTools protocol, which the page's CSP does not govern.
    page.evaluate(AXE)
    result = page.evaluate("async () => await axe.run(document, {resultTypes: ['violations']})")
    bad = result["violations"]
    assert not bad, f"{name}: " + json.dumps([(v["id"], v["impact"], v["help"], [n["target"] for n in v["nodes"]]) for v in bad], indent=1)


def fits(page, name):
    wide = page.evaluate("document.documentElement.scrollWidth")
    inner = page.evaluate("window.innerWidth")
    assert wide <= inner, f"{name}: {wide} px wide in {inner} px"


def sign_in(browser, token):
    context = browser.new_context(viewport={"width": 1100, "height": 900}, timezone_id="America/New_York")
    page = context.new_page()
    page.goto(URL + "/console")
    assert page.url.endswith("/console/signin"), page.url
    page.fill("#token", token)
    with page.expect_navigation():
        page.click("button[type=submit]")
    assert "/signin" not in page.url, page.content()
    state = context.storage_state()
    context.close()
    return state


def view(browser, storage, width, height, scheme):
    context = browser.new_context(viewport={"width": width, "height": height}, color_scheme=scheme, storage_state=storage,
                                  timezone_id="America/New_York")
    return context, context.new_page()


def read_state(page, tenant, label):
    """The page shows the tenant's state: its words, what the script watches, the brand."""
    main = page.inner_text("main")
    for text in tenant.get("expect", []):
        assert text in main, f"{label}: {text!r} missing:\n{main}"
    for text in tenant.get("absent", []):
        assert text not in main, f"{label}: {text!r} shown:\n{main}"
    watched = page.get_attribute("[data-watch]", "data-state")
    assert watched == tenant["state"], f"{label}: watched {watched!r}"
    assert page.inner_text(".brand") == PRODUCT, f"{label}: brand {page.inner_text('.brand')!r}"
    assert page.title().endswith(" · " + PRODUCT), page.title()


def test_every_state_as_its_customer_and_the_operator():
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox"])
        for tenant in TENANTS:
            storage = sign_in(browser, tenant["token"])
            overview = f"/console/tenants/{tenant['id']}"
            for width, height, scheme in VIEWS:
                context, page = view(browser, storage, width, height, scheme)
                label = f"{tenant['shot']} at {width} px {scheme}"
                page.goto(URL + overview)
                assert page.url.endswith(overview), f"{label}: {page.url}"
                read_state(page, tenant, label)
                fits(page, label)
                accessible(page, label)
                kind = "desktop" if width > 500 else "phone"
                page.screenshot(path=os.path.join(SHOTS, f"{tenant['shot']}-{kind}-{scheme}.png"), full_page=True)
                if tenant.get("urgent"):
                    # Red, announced, and ticking from the server's time left (not the viewer's
                    # clock, which here is a year away from the broker's).
                    assert page.get_attribute(".banner", "role") == "alert"
                    assert "urgent" in page.get_attribute(".banner", "class")
                    page.wait_for_function("document.querySelector('.countdown').textContent.includes('s left')")
                    left = page.inner_text(".countdown")
                    assert left.startswith("21h 59m") or left.startswith("22h 0m"), left
                sentence = page.inner_text(".state")
                page.goto(URL + overview + "/ticket")
                label = f"{tenant['shot']} ticket at {width} px {scheme}"
                assert page.inner_text(".state") == sentence, f"{label}: the ticket says another state"
                assert page.get_attribute("[data-watch]", "data-state") == tenant["state"], label
                for text in tenant.get("absent", []):
                    assert text not in page.inner_text("main"), f"{label}: {text!r} shown"
                fits(page, label)
                accessible(page, label)
                context.close()

        # The guide under the product's name.
        context, page = view(browser, None, 390, 844, "dark")
        page.goto(URL + "/console/guide#step-9")
        assert page.inner_text("h1") == f"{PRODUCT} customer guide", page.inner_text("h1")
        fits(page, "guide")
        accessible(page, "guide")
        context.close()

        operator = sign_in(browser, os.environ["OPERATOR_TOKEN"])
        names = sorted({t["state"] for t in TENANTS})
        for width, height, scheme in VIEWS:
            context, page = view(browser, operator, width, height, scheme)
            page.goto(URL + "/console/operator")
            label = f"operator at {width} px {scheme}"
            tiles = page.inner_text("nav.tiles")
            for name in names:
                count = sum(1 for t in TENANTS if t["state"] == name)
                words = "suspended (held)" if name == "suspended" else name
                assert f"{count} {words}" in tiles.replace("\n", " "), f"{label}: {count} {words} not in {tiles!r}"
            assert "1 suspended (held) for a person to decide" in page.inner_text("main")
            assert page.locator("button", has_text="Release").count() == 1 and page.locator("button", has_text="Dismiss").count() == 1
            fits(page, label)
            accessible(page, label)
            if width > 500 and scheme == "light":
                page.screenshot(path=os.path.join(SHOTS, "operator-desktop-light.png"), full_page=True)
            for name in names:
                page.goto(URL + f"/console/operator?state={name}")
                rows = page.locator(".table-wrap tbody tr").all_inner_texts()
                ids = sorted(t["id"] for t in TENANTS if t["state"] == name)
                assert sorted(r.split("\t")[0].strip() for r in rows) == ids, f"{label} {name}: {rows}"
                if name == "restoring":
                    assert "restoring (1/2)" in rows[0], rows
                if name == "revoked":
                    assert any("passed" in r for r in rows) and any("left" in r for r in rows), rows
                fits(page, f"{label} {name}")
                accessible(page, f"{label} {name}")
            # Each tenant's overview as the operator reads it.
            for tenant in TENANTS:
                page.goto(URL + f"/console/tenants/{tenant['id']}")
                read_state(page, tenant, f"operator: {tenant['shot']} at {width} px {scheme}")
                fits(page, f"operator: {tenant['shot']}")
                accessible(page, f"operator: {tenant['shot']} at {width} px {scheme}")
            context.close()
        browser.close()
