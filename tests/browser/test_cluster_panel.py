"""The cluster notebook in a real browser: run it, start three nodes, kill the leader.

Drives JupyterLab in headless Chromium as a reader would: open notebook 7, Run All Cells,
then use the buttons of the last panel ("Your cluster", which nothing in the notebook
touches) to start node01-node03, wait until the panel names a leader, press that node's kill
button, and check that the panel then names a different node.  Screenshots of the panel and
of the page go to test-artifacts/; with ``ELECT_UPDATE_README_IMAGE=1`` the panel picture
also replaces docs/images/widget-panel.png (the README's picture).
"""

from __future__ import annotations

import os
import re
import shutil

import pytest
from browser_support import ARTIFACTS, NOTEBOOK, REPO, LabServer
from playwright.sync_api import Locator, Page, expect

pytestmark = [pytest.mark.browser, pytest.mark.timeout(240)]

NODES = ("node01", "node02", "node03")
LEADER_LINE = re.compile(r"Leader \(per Consul\): (node0[123])\s*$")
README_IMAGE = REPO / "docs" / "images" / "widget-panel.png"
# Upper bounds in seconds, with room for a busy machine.  Typical: page 5-15 s, Run All Cells
# 15-25 s (the notebook's own story: two crashes at TTL 1 s), a failover 4 s.
PAGE_READY = 60
RUN_ALL = 90
LEADER = 30


def error_outputs(page: Page) -> str:
    """The text of the error outputs shown in the notebook (for failure messages)."""
    errors = page.locator(
        ".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']"
    ).all_inner_texts()
    return "\n---\n".join(text[-1500:] for text in errors) or "(no error output in the page)"


def button(row: Locator, action: str) -> Locator:
    """The ``action`` button ("start", "kill", ...) of a node's row."""
    return row.get_by_role("button", name=action, exact=True)


def test_kill_the_leader_from_the_panel(lab: LabServer, page: Page) -> None:
    page.goto(lab.url(f"lab/tree/{NOTEBOOK.name}"))
    expect(
        page.locator(".jp-NotebookPanel .jp-Notebook .jp-Cell").first,
        "JupyterLab did not show the notebook's cells",
    ).to_be_visible(timeout=PAGE_READY * 1000)
    expect(
        page.locator("#jp-main-statusbar").get_by_text("Idle"),
        "the kernel did not become idle",
    ).to_be_visible(timeout=PAGE_READY * 1000)

    page.locator("#jp-menu-panel .lm-MenuBar-item", has_text="Run").first.click()
    page.locator(".lm-Menu-item", has_text="Run All Cells").first.click()

    panel = page.locator(".jp-OutputArea-output .elect-panel", has_text="Your cluster")
    try:
        expect(panel).to_be_visible(timeout=RUN_ALL * 1000)
    except AssertionError:
        pytest.fail(
            f"the 'Your cluster' panel did not appear within {RUN_ALL}s of Run All Cells; "
            f"error outputs in the page:\n{error_outputs(page)}"
        )
    panel.scroll_into_view_if_needed()
    leader_line = panel.locator(".elect-leader")
    expect(leader_line, "a fresh panel should show no leader").to_contain_text("none")

    rows = {node: panel.locator(f".elect-node-{node}") for node in NODES}
    for row in rows.values():
        button(row, "start").click()
    for node, row in rows.items():
        expect(row, f"{node} did not show as running").to_contain_text(
            "running", timeout=LEADER * 1000
        )
    expect(leader_line, "no leader shown after starting three nodes").to_have_text(
        LEADER_LINE, timeout=LEADER * 1000
    )
    first = LEADER_LINE.search(leader_line.inner_text()).group(1)

    button(rows[first], "kill").click()
    expect(rows[first], f"{first}'s row does not say it was killed").to_contain_text(
        "killed", timeout=LEADER * 1000
    )
    others = "|".join(node for node in NODES if node != first)
    expect(leader_line, f"the panel still names {first} (killed) or nobody as leader").to_have_text(
        re.compile(rf"Leader \(per Consul\): ({others})\s*$"), timeout=LEADER * 1000
    )
    second = LEADER_LINE.search(leader_line.inner_text()).group(1)
    expect(rows[second], f"{second}'s row does not say Consul names it").to_contain_text(
        "Consul: leader"
    )

    ARTIFACTS.mkdir(exist_ok=True)
    panel.screenshot(path=ARTIFACTS / "widget-panel.png")
    page.screenshot(path=ARTIFACTS / "cluster-notebook.png")
    if os.environ.get("ELECT_UPDATE_README_IMAGE") == "1":
        README_IMAGE.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(ARTIFACTS / "widget-panel.png", README_IMAGE)

    panel.get_by_role("button", name="shut down", exact=True).click()
    expect(panel, "the shut down button did not stop the cluster").to_contain_text(
        "cluster shut down", timeout=LEADER * 1000
    )
