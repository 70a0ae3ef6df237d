"""Fixtures for the browser test: a dev agent, JupyterLab on a notebook copy, a Chromium page.

- ``lab``: a :class:`browser_support.LabServer` (launched, perhaps not answering yet)
  serving a temporary folder that holds a copy of the notebook under test (outputs cleared),
  with ``CONSUL_HTTP_ADDR`` pointing at a fresh embedded dev agent.  After the test, the
  server, its kernel and the kernel's node processes are gone (the test errors, naming them,
  if any had to be killed), then the agent.
- ``page``: a Playwright page in Debian's ``/usr/bin/chromium``, once ``lab`` answers.  When
  the test fails, a screenshot of the page goes to ``test-artifacts/browser-failure.png``.

Without ``/usr/bin/chromium`` the tests here are skipped, saying so; with ``REQUIRE_BROWSER=1``
(as ``.ci/run`` sets, and as ``run-tests.sh`` reads) that is a failure instead.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from browser_support import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS, NOTEBOOK, LabServer

from elect_helpers.devagent import DevAgentProcess


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):
    """Keep each phase's report on the item, so fixtures can tell whether the test failed."""
    report = yield
    setattr(item, f"report_{report.when}", report)
    return report


@pytest.fixture
def chromium() -> str:
    """The path of Debian's chromium; skip (or fail, with REQUIRE_BROWSER=1) when missing."""
    if not os.access(CHROMIUM, os.X_OK):
        reason = f"{CHROMIUM} not found (install it: apt-get update && apt-get install -y chromium)"
        if os.environ.get("REQUIRE_BROWSER") == "1":
            pytest.fail(f"REQUIRE_BROWSER=1 but {reason}")
        pytest.skip(reason)
    return CHROMIUM


def copy_without_outputs(source: Path, target_dir: Path) -> Path:
    """Copy a notebook into ``target_dir`` with outputs, counts and widget state removed."""
    notebook = json.loads(source.read_text())
    for cell in notebook["cells"]:
        if cell["cell_type"] == "code":
            cell["outputs"] = []
            cell["execution_count"] = None
    notebook["metadata"].pop("widgets", None)
    target = target_dir / source.name
    target.write_text(json.dumps(notebook, indent=1))
    return target


@pytest.fixture
def lab(tmp_path: Path, chromium: str) -> Iterator[LabServer]:
    """JupyterLab serving a copy of the cluster notebook, its kernels using a fresh agent."""
    root = tmp_path / "notebooks"
    root.mkdir()
    copy_without_outputs(NOTEBOOK, root)
    state = tmp_path / "lab-state"
    state.mkdir()
    with DevAgentProcess(port=0, session_ttl_min="1s") as agent:
        server = LabServer(root, state, {"CONSUL_HTTP_ADDR": agent.address})
        try:
            yield server.launch()
        finally:
            killed = server.stop()
        if killed:
            pytest.fail(
                "processes started for the test were still alive after JupyterLab shut down "
                "and had to be killed:\n" + "\n".join(killed)
            )


@pytest.fixture
def page(request: pytest.FixtureRequest, chromium: str, lab: LabServer):
    """A Chromium page (1400x1000) once ``lab`` answers; on failure, a screenshot of it."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        # Chromium starts while JupyterLab is still starting: both take a few seconds.
        browser = playwright.chromium.launch(
            executable_path=chromium, args=CHROMIUM_ARGS, headless=True
        )
        try:
            lab.wait_ready()
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            yield page
            report = getattr(request.node, "report_call", None)
            if report is not None and report.failed:
                ARTIFACTS.mkdir(exist_ok=True)
                page.screenshot(path=ARTIFACTS / "browser-failure.png", full_page=True)
        finally:
            browser.close()
