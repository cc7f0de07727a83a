"""First-load size of a channel's page (issue 21; docs/ui.md): in a fresh
browser (nothing cached, no service worker yet) the HTML, CSS and JS the page
loads, each gzip-compressed, sum to under 150 KB. The breakdown is printed
and written to test-artifacts/first-load.json; the figure is in docs/ui.md."""

from __future__ import annotations

import gzip
import json
from urllib.parse import urlparse

import pytest

from tests.e2e.browser import channel_path
from tests.e2e.harness import ROOT
from tests.e2e.pages import live
from tests.e2e.test_browser_a11y import open_tab

pytestmark = pytest.mark.e2e

BUDGET = 150 * 1024
KINDS = ("document", "stylesheet", "script")


def gzipped(body: bytes) -> int:
    return len(gzip.compress(body, compresslevel=6))


async def test_a_channel_page_loads_under_150_kb_gzipped(classroom, browser):
    room = classroom
    alice = await open_tab(browser, room.server, "alice", room.alice, "desktop")
    responses = []
    alice.page.on("response", lambda response: responses.append(response))
    await alice.page.goto(channel_path(room.workspace_id, room.general))
    await live(alice)
    await alice.page.wait_for_load_state("networkidle")

    rows = []
    for response in responses:
        kind = response.request.resource_type
        if kind not in KINDS or not response.ok or response.request.service_worker is not None:
            continue
        body = await response.body()
        rows.append({"path": urlparse(response.url).path, "kind": kind, "bytes": len(body), "gzip": gzipped(body)})
    paths = [row["path"] for row in rows]
    assert len(paths) == len(set(paths)), f"a file was loaded twice: {paths}"
    assert {"document", "stylesheet", "script"} == {row["kind"] for row in rows}, rows
    total = sum(row["gzip"] for row in rows)
    raw = sum(row["bytes"] for row in rows)

    # What the service worker then fetches in the background to precache
    # (not part of the first paint, but what a first visit costs in all).
    shell = await alice.page.request.get("/sw.js")
    precache = json.loads((await shell.text()).split("const PRECACHE = ", 1)[1].split(";\n", 1)[0])
    shell_gzip = 0
    for url in precache:
        got = await alice.page.request.get(url)
        shell_gzip += gzipped(await got.body())

    report = {"files": sorted(rows, key=lambda row: -row["gzip"]), "totalBytes": raw, "totalGzip": total, "budget": BUDGET, "precacheGzip": shell_gzip}
    (ROOT / "test-artifacts").mkdir(exist_ok=True)
    (ROOT / "test-artifacts" / "first-load.json").write_text(json.dumps(report, indent=2))
    for row in report["files"]:
        print(f"{row['gzip']:>7} B gz {row['bytes']:>7} B  {row['kind']:<10} {row['path']}")
    print(f"first load: {len(rows)} files, {raw / 1024:.1f} KB, {total / 1024:.1f} KB gzipped (budget {BUDGET // 1024} KB); precache {shell_gzip / 1024:.1f} KB gzipped")
    assert total < BUDGET, f"the first load of a channel's page is {total / 1024:.1f} KB gzipped, over {BUDGET // 1024} KB"
    alice.assert_clean()
