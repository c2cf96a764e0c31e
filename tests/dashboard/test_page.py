"""The page as a whole: served by our server alone, as ES modules, under a strict Content-Security-Policy that it
keeps; it cannot be framed by another site; and Swagger UI at /docs still works under its own policy."""

from __future__ import annotations

import re
from typing import Any

import requests

from .conftest import REPORT_CSP_VIOLATIONS, csp_violations
from .helpers import STATIC, get, worst_phase
from .mapview import click_bus, hover_bus

MODULES = sorted(path.name for path in STATIC.glob("*.js"))


def directives(policy: str) -> dict[str, list[str]]:
    """A Content-Security-Policy as {directive: [sources]}."""
    parsed = {}
    for part in filter(None, (p.strip() for p in policy.split(";"))):
        name, *sources = part.split()
        parsed[name] = sources
    return parsed


def test_page_is_served_at_root_from_our_own_files(page: Any, server: str) -> None:
    response = requests.get(f"{server}/", timeout=10)
    assert response.status_code == 200 and response.headers["Content-Type"].startswith("text/html")
    for name in ("main.js", "style.css"):
        assert requests.get(f"{server}/static/{name}", timeout=10).status_code == 200
    assert page.title() == "IEEE 123-bus feeder dashboard"
    assert page.foreign_requests == [], "the page must work offline: everything from our server"
    assert page.problems == []
    # No CDN or other outside reference anywhere in the static files (the SVG namespace is not a request).
    for file in STATIC.iterdir():
        urls = set(re.findall(r"(?:https?:)?//[\w.-]+\.[a-z]{2,}[^\s\"'`)]*", file.read_text(encoding="utf-8")))
        assert urls <= {"http://www.w3.org/2000/svg"}, (file.name, urls)


def test_the_page_loads_its_code_as_modules_from_our_server_alone(page: Any, server: str) -> None:
    # One script element, a module, and no inline code or style in the page's own HTML.
    scripts = page.eval_on_selector_all("script", "els => els.map(e => [e.type, e.getAttribute('src'), e.text.trim()])")
    assert scripts == [["module", "/static/main.js", ""]]
    html = requests.get(f"{server}/", timeout=10).text
    assert not re.search(r"<script(?![^>]*\bsrc=)", html) and "<style" not in html and " style=" not in html
    assert not re.search(r"\son[a-z]+=", html), "no inline event handlers either"

    # Every request the page made went to our server; the scripts it fetched are exactly the modules in static/,
    # each once, each with a JavaScript type and nosniff.
    assert page.foreign_requests == []
    assert {r.url.split("/", 3)[2] for r in page.requests} == {server.split("/", 3)[2]}
    scripts = [r for r in page.requests if r.resource_type == "script"]
    assert sorted(r.url.removeprefix(f"{server}/static/") for r in scripts) == MODULES
    for request in scripts:
        headers = request.response().headers
        assert headers["content-type"].startswith("text/javascript"), request.url
        assert headers["x-content-type-options"] == "nosniff"
    assert len(MODULES) >= 8 and page.problems == []


def test_the_page_and_its_api_answers_carry_the_policy_and_nosniff(page: Any, server: str) -> None:
    document = next(r for r in page.requests if r.resource_type == "document").response().headers
    policy = directives(document["content-security-policy"])
    assert policy["default-src"] == ["'self'"] and policy["script-src"] == ["'self'"]
    assert policy["style-src"] == ["'self'"] and policy["frame-ancestors"] == ["'none'"]
    assert document["x-content-type-options"] == "nosniff"
    answered = [r for r in page.requests if r.response() is not None]
    assert any(r.resource_type == "fetch" for r in answered)
    for request in answered:
        headers = request.response().headers
        assert headers["x-content-type-options"] == "nosniff", request.url
        assert directives(headers["content-security-policy"]) == policy, request.url


def test_the_page_works_under_its_policy_and_a_violation_would_be_caught(page: Any, server: str) -> None:
    # What the page colours through the style object (allowed: not an inline style attribute) is coloured.
    click_bus(page, "67")
    expected = page.evaluate("v => window.voltageColour(v)", worst_phase(get(server, "/state"), "67"))
    assert page.locator("#bus-details .swatch").evaluate("e => getComputedStyle(e).backgroundColor") == expected
    hover_bus(page, "67")
    assert page.locator("#tooltip").is_visible()
    assert csp_violations(page) == [] and page.problems == []

    # The policy is in force and the tab reports a violation: inline code and inline styles are refused.
    page.evaluate("""() => {
        const s = document.createElement('script');
        s.textContent = 'document.body.dataset.inline = "ran"';
        document.body.appendChild(s);
        document.getElementById('status').setAttribute('style', 'color: red');
    }""")
    page.wait_for_function("() => window.cspViolations >= 2")  # the violation events are queued as tasks
    assert page.evaluate("() => document.body.dataset.inline") is None
    assert page.locator("#status").evaluate("e => getComputedStyle(e).color") != "rgb(255, 0, 0)"
    violations = csp_violations(page)
    assert any("script-src" in v for v in violations) and any("style-src" in v for v in violations), violations
    page.problems.clear()  # the fixture's check is for the page's own code


def test_another_site_cannot_frame_the_dashboard(browser: Any, server: str) -> None:
    context = browser.new_context()
    try:
        tab = context.new_page()
        with tab.expect_console_message(lambda message: "frame-ancestors" in message.text, timeout=30_000):
            tab.set_content(f'<iframe id="frame" src="{server}/" width="800" height="600"></iframe>')
        frame = tab.frame_locator("#frame")
        assert frame.locator("body[data-ready='true']").count() == 0
        assert frame.locator("#status").count() == 0, "the dashboard rendered inside another page"
    finally:
        context.close()


def test_swagger_ui_still_loads_under_its_own_policy(browser: Any, server: str) -> None:
    context = browser.new_context()
    try:
        context.add_init_script(REPORT_CSP_VIOLATIONS)
        tab = context.new_page()
        problems: list[str] = []
        foreign: list[str] = []
        tab.on("console", lambda message: message.type == "error" and problems.append(message.text))
        tab.on("pageerror", lambda error: problems.append(str(error)))
        tab.on("request", lambda r: r.url.startswith((server + "/", "data:")) or foreign.append(r.url))
        answer = tab.goto(f"{server}/docs")
        tab.wait_for_selector(".swagger-ui .info .title", timeout=30_000)
        assert "IEEE 123-bus power-flow API" in tab.locator(".swagger-ui .info .title").inner_text()
        tab.wait_for_selector(".opblock-summary-path", timeout=30_000)
        assert tab.locator(".opblock").count() > 20, "the operations are listed"
        assert problems == [] and foreign == []
        policy = directives(answer.headers["content-security-policy"])
        assert policy["frame-ancestors"] == ["'none'"] and policy["default-src"] == ["'self'"]
        assert answer.headers["x-content-type-options"] == "nosniff"
    finally:
        context.close()
