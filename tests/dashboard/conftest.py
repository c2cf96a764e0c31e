"""The dashboard at GET /, driven in a real headless Chromium against a real `python api.py`: the fixtures.

Needs Playwright for Python (`pip install playwright`) and the system Chromium (`apt-get install chromium`);
Playwright's own browser download is never used. Without them these tests skip, loudly, unless
REQUIRE_BROWSER=1, when they fail. Screenshots go to test-artifacts/dashboard/ (gitignored).

One browser and one server for the whole package; each test gets a fresh tab on the base case. Every tab records
what would betray a broken page: page errors, console errors (Chromium logs a Content-Security-Policy violation
as one, and so does the listener below), and requests to anywhere but our server.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any, Iterator

import pytest
from support.server import start_server, stop_server

from .helpers import delete_other_scenarios, post

CHROMIUM = Path(os.environ.get("DASHBOARD_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
TIMEOUT_MS = 30_000
#: Run in every tab before the page's own code: each Content-Security-Policy violation becomes a console error (and
#: is counted in window.cspViolations, for a test to wait on).
REPORT_CSP_VIOLATIONS = """window.cspViolations = 0;
document.addEventListener("securitypolicyviolation", (e) => { window.cspViolations++; console.error(
    `CSP violation: ${e.violatedDirective} blocked ${e.blockedURI || "inline code"} at ${e.sourceFile}:${e.lineNumber}`); });"""


def browser_problem() -> str | None:
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError as error:
        return f"Playwright for Python is not installed ({error}): pip install playwright"
    if not CHROMIUM.exists():
        return f"no Chromium at {CHROMIUM}: apt-get install -y chromium"
    return None


@pytest.fixture(scope="package")
def browser() -> Iterator[Any]:
    problem = browser_problem()
    if problem:
        if os.environ.get("REQUIRE_BROWSER") == "1":
            pytest.fail(f"REQUIRE_BROWSER=1 but the dashboard cannot be tested: {problem}")
        warnings.warn(f"DASHBOARD BROWSER TESTS SKIPPED: {problem}")
        pytest.skip(f"DASHBOARD BROWSER TESTS SKIPPED: {problem}")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture(scope="package")
def server(browser: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real server for the dashboard tests; each test starts from the base case via POST /reset."""
    # No access log: start_server pipes stderr and nobody reads it, so a long log could fill the pipe.
    process, url = start_server(tmp_path_factory.mktemp("dashboard-server"), "--no-access-log",
                                env={"IEEE123_API_KEY": ""})
    try:
        yield url
    finally:
        stop_server(process)


def open_tab(browser: Any, url: str, **context_options: Any) -> tuple[Any, Any]:
    """A new context and tab that record problems (`tab.problems`) and requests (`tab.requests`, `tab.foreign_requests`:
    those not to `url`'s server); the page at `url` opened and ready."""
    context = browser.new_context(**context_options)
    context.add_init_script(REPORT_CSP_VIOLATIONS)
    tab = context.new_page()
    tab.set_default_timeout(TIMEOUT_MS)
    origin = url.split("/", 3)[:3]
    server = "/".join(origin)
    tab.problems, tab.requests, tab.foreign_requests = [], [], []
    tab.on("pageerror", lambda error: tab.problems.append(f"page error: {error}"))
    tab.on("console", lambda message: message.type == "error" and tab.problems.append(message.text))
    tab.on("request", lambda request: tab.requests.append(request))
    tab.on("request", lambda request: request.url.startswith((server + "/", "data:"))
           or tab.foreign_requests.append(request.url))
    tab.goto(url)
    tab.wait_for_selector("body[data-ready='true']")
    return context, tab


def csp_violations(tab: Any) -> list[str]:
    return [p for p in tab.problems if "CSP violation" in p or "Content Security Policy" in p]


@pytest.fixture
def page(browser: Any, server: str) -> Iterator[Any]:
    """The dashboard on the base case, alone among scenarios; no test may leave a policy violation behind."""
    delete_other_scenarios(server)
    post(server, "/reset", {})
    context, tab = open_tab(browser, f"{server}/", viewport={"width": 1440, "height": 1000})
    try:
        yield tab
        assert csp_violations(tab) == [], "the page broke its Content-Security-Policy"
    finally:
        context.close()
