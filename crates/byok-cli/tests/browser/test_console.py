"""The console in a real headless Chromium: the customer's whole restoration story from the page.

Driven by crates/byok-cli/tests/browser.rs, which starts `byok serve` (probing every second),
adds tenant `acme` in `eu` and runs the customer's setup with the aws CLI. Here: sign in as the
tenant admin, see the regions, revoke with the aws CLI, watch the page show revoked with a
countdown, open the ticket, press "Access restored — verify now" with one region still disabled
(the page names it and its steps), fix it, press again (active); add a webhook endpoint and send
it a test event; the operator view lists the tenant. Screenshots of each step go to $SCREENSHOTS; axe-core checks every page for
accessibility violations of any impact. Twice (revoked, then active) every page a customer and
the operator reach is swept at desktop and phone width, light and dark: no page is wider than
the viewport, axe finds nothing.
"""

import json
import os
import subprocess
import time

from playwright.sync_api import sync_playwright

URL = os.environ["BYOK_URL"]
SHOTS = os.environ["SCREENSHOTS"]
AXE = open(os.environ["AXE_JS"]).read()


def aws(*args, region="us-east-1"):
    env = dict(os.environ)
    env.update({"AWS_ACCESS_KEY_ID": os.environ["CUSTOMER_KEY"], "AWS_SECRET_ACCESS_KEY": os.environ["CUSTOMER_SECRET"]})
    out = subprocess.run(
        [os.environ["AWS_BIN"], "--endpoint-url", os.environ["AWS_ENDPOINT"], "--region", region, "--output", "json", *args],
        env=env, capture_output=True, text=True,
    )
    assert out.returncode == 0, out.stderr
    return out.stdout


def accessible(page, name):
    # axe runs through the DevTools protocol, which the page's CSP does not govern.
    page.evaluate(AXE)
    result = page.evaluate("async () => await axe.run(document, {resultTypes: ['violations']})")
    bad = result["violations"]
    assert not bad, f"{name}: " + json.dumps([(v["id"], v["impact"], v["help"], [n["target"] for n in v["nodes"]]) for v in bad], indent=1)


CUSTOMER_PAGES = ["/console/tenants/acme", "/console/tenants/acme/ticket", "/console/tenants/acme/audit", "/console/guide"]
OPERATOR_PAGES = ["/console/operator", "/console/operator?state=revoked", "/console/tenants/globex", "/console/tenants/globex?setup=terraform"]


def sweep(browser, storage, pages, label, shots=False):
    """Every page at desktop and phone width, light and dark: never wider than the viewport,
    no accessibility violation of any impact."""
    for width, height in ((1100, 900), (390, 844)):
        for scheme in ("light", "dark"):
            context = browser.new_context(viewport={"width": width, "height": height}, color_scheme=scheme, storage_state=storage)
            page = context.new_page()
            for path in pages:
                page.goto(URL + path)
                assert "/signin" not in page.url, f"{label} {path}: signed out"
                wide = page.evaluate("document.documentElement.scrollWidth")
                inner = page.evaluate("window.innerWidth")
                assert wide <= inner, f"{label} {path} at {width} px {scheme}: {wide} px wide"
                accessible(page, f"{label} {path} at {width} px {scheme}")
                if shots and width == 390:
                    name = path.strip("/").replace("/", "-").replace("?", "-").replace("=", "-")
                    shot(page, f"phone-{scheme}-{label}-{name}.png")
            context.close()


def shot(page, name):
    page.screenshot(path=os.path.join(SHOTS, name), full_page=True)


def until(page, predicate, what, seconds=30):
    deadline = time.time() + seconds
    while time.time() < deadline:
        page.reload()
        if predicate(page.content()):
            return
        time.sleep(0.5)
    raise AssertionError(f"{what} did not happen within {seconds} s:\n{page.content()}")


def go(page, selector):
    """Clicks something that loads a new page, and waits for that page."""
    with page.expect_navigation():
        page.click(selector)


def sign_in(browser, token):
    # A viewer in Paris: every time shown also in their zone, with its name.
    context = browser.new_context(viewport={"width": 1100, "height": 900}, timezone_id="Europe/Paris")
    page = context.new_page()
    page.goto(URL + "/console")
    assert page.url.endswith("/console/signin"), page.url
    page.fill("#token", token)
    go(page, "button[type=submit]")
    return page


def test_the_customer_restores_access_from_the_console():
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox"])
        page = sign_in(browser, os.environ["ADMIN_TOKEN"])
        assert page.url.endswith("/console/tenants/acme"), page.url
        until(page, lambda html: "Last check" in html and "works" in html, "the first probe")
        assert "eu-central-1" in page.content() and "eu-west-1" in page.content()
        shot(page, "01-overview.png")
        accessible(page, "overview")

        # The customer revokes: the trust statement to Deny, and the eu-west-1 key disabled.
        trust = json.loads(os.environ["TRUST_POLICY"])
        deny = json.loads(os.environ["TRUST_POLICY"])
        deny["Statement"][0]["Effect"] = "Deny"
        aws("iam", "update-assume-role-policy", "--role-name", os.environ["ROLE"], "--policy-document", json.dumps(deny))
        aws("kms", "disable-key", "--key-id", os.environ["WEST_KEY"], region="eu-west-1")
        # Nobody reloads: the page follows the tenant's state by itself.
        page.wait_for_selector("text=Revoked since", timeout=30000)
        page.wait_for_function("document.querySelector('.countdown').textContent.includes('left')")
        assert "14d" in page.inner_text(".countdown") or "15d" in page.inner_text(".countdown"), page.inner_text(".countdown")
        assert "UTC" in page.inner_text("[data-deadline]") and "Europe/Paris" in page.inner_text("[data-deadline]"), page.inner_text("[data-deadline]")
        shot(page, "02-revoked.png")
        accessible(page, "revoked overview")
        sweep(browser, page.context.storage_state(), CUSTOMER_PAGES, "revoked", shots=True)

        # Steps 3-8 done, the key still disabled: "verify now" names what is missing.
        aws("iam", "update-assume-role-policy", "--role-name", os.environ["ROLE"], "--policy-document", json.dumps(trust))
        go(page, "text=Ticket")
        assert "BYOK revocation started for AWS account" in page.content()
        go(page, "text=Access restored — verify now")
        body = page.inner_text("main")
        assert "Not restored yet" in body and "eu-west-1: steps 9-12" in body, body
        # The step runs as printed: the real key ARN, no placeholder.
        assert f"enable-key --region eu-west-1 --key-id {os.environ['WEST_KEY']}" in body, body
        assert "Europe/Paris" in page.inner_text(".comment .who"), "the ticket's times in the viewer's zone too"
        shot(page, "03-restore-refused.png")
        accessible(page, "ticket")

        # Steps 9-12 in eu-west-1, then verify again: access is back.
        aws("kms", "enable-key", "--key-id", os.environ["WEST_KEY"], region="eu-west-1")
        go(page, "text=Access restored — verify now")
        assert "Access is restored." in page.inner_text("main"), page.inner_text("main")
        go(page, "text=Overview")
        assert "Active:" in page.inner_text(".state")
        shot(page, "04-restored.png")
        # The customer adds a webhook endpoint from the page: its secret is shown once.
        page.click("text=Add an endpoint")
        page.fill("#webhook-url", os.environ["WEBHOOK_URL"])
        go(page, "text=Add endpoint")
        assert "shown this once" in page.inner_text("main") and page.inner_text("#new-secret").startswith("whsec_")
        accessible(page, "overview with a new webhook secret")
        page.reload()
        assert page.locator("#new-secret").count() == 0, "the secret is shown once"
        assert "/byok" in page.inner_text("main") and "Send test event" in page.inner_text("main")
        go(page, "text=Send test event")
        assert "Test event queued" in page.inner_text("main"), page.inner_text("main")
        until(page, lambda html: "webhook.test: pending" in html, "the test event's delivery")
        accessible(page, "overview with webhooks")
        go(page, "text=Audit")
        assert page.locator("svg").count() == 2, "per day and per hour"
        accessible(page, "audit")
        shot(page, "05-audit.png")

        # At phone width, in the dark: still readable, still accessible.
        phone = browser.new_context(viewport={"width": 390, "height": 844}, color_scheme="dark", storage_state=page.context.storage_state())
        small = phone.new_page()
        small.goto(URL + "/console/tenants/acme")
        assert "Active:" in small.inner_text(".state")
        assert small.evaluate("document.documentElement.scrollWidth") <= 390 + 1, "no sideways scrolling at phone width"
        shot(small, "07-phone-dark.png")
        accessible(small, "phone, dark")

        operator = sign_in(browser, os.environ["OPERATOR_TOKEN"])
        assert operator.url.endswith("/console/operator"), operator.url
        assert "acme" in operator.inner_text("table")
        shot(operator, "06-operator.png")
        accessible(operator, "operator")
        go(operator, "a[href='/console/tenants/globex']")
        assert "When the setup is done, verify it" in operator.inner_text("main")
        shot(operator, "08-onboarding.png")
        sweep(browser, page.context.storage_state(), CUSTOMER_PAGES, "active", shots=True)
        sweep(browser, operator.context.storage_state(), OPERATOR_PAGES, "operator", shots=True)
        browser.close()
