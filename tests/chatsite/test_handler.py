"""chatsite.handler: uploads take turns (CHAT_UPLOAD_CONCURRENCY at a time
per process, the rest waiting in arrival order; files/turns.py), every other
request goes straight through, and an upload waiting for the image worker
steps aside. The view here is a stand-in that waits until released, so
the test can count how many run at once; tests/e2e/test_files_e2e.py sends
concurrent uploads through a real daphne, and bench/upload_bench.py measures
what the turns are for (the chat's latency during 20 uploads)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from django.http import HttpRequest, HttpResponse, HttpResponseBase
from django.test import RequestFactory

from chatsite.handler import ChatASGIHandler
from files.turns import step_aside


class StandIn(ChatASGIHandler):
    """The handler with `view` in place of Django's middleware and URL
    resolution: the turns are what is under test."""

    def __init__(self, view: Callable[[HttpRequest], Awaitable[HttpResponse]]) -> None:
        super().__init__()
        self.view = view

    async def get_response_async(self, request: HttpRequest) -> HttpResponseBase:
        return await self.view(request)


async def settle() -> None:
    for _ in range(20):
        await asyncio.sleep(0)


async def test_uploads_take_turns_in_arrival_order_and_other_requests_do_not_wait(settings):
    settings.CHAT_UPLOAD_CONCURRENCY = 2
    running: dict[str, int] = {"upload": 0, "other": 0}
    peak: dict[str, int] = {"upload": 0, "other": 0}
    started: list[str] = []
    release = asyncio.Event()

    async def view(request: HttpRequest) -> HttpResponse:
        kind = "upload" if request.path_info.startswith("/api/files/") and request.method == "POST" else "other"
        started.append(request.GET.get("n", kind))
        running[kind] += 1
        peak[kind] = max(peak[kind], running[kind])
        await release.wait()
        running[kind] -= 1
        return HttpResponse(kind)

    handler = StandIn(view)
    factory = RequestFactory()
    uploads = [asyncio.create_task(handler.run_get_response(factory.post(f"/api/files/?n=u{i}"))) for i in range(6)]
    await settle()
    others = [
        asyncio.create_task(handler.run_get_response(request))
        for request in (factory.get("/api/files/"), factory.post("/api/channels/1/messages/"), factory.get("/files/x/y.pdf"))
    ]
    await settle()
    assert running == {"upload": 2, "other": 3}  # two uploads at a time; the rest are not held back
    assert started[:2] == ["u0", "u1"]
    release.set()
    answers = await asyncio.wait_for(asyncio.gather(*uploads, *others), 10)
    assert [a.content for a in answers] == [b"upload"] * 6 + [b"other"] * 3
    assert peak == {"upload": 2, "other": 3}
    assert [n for n in started if n.startswith("u")] == [f"u{i}" for i in range(6)]  # in arrival order


async def test_a_waiting_upload_whose_client_left_gives_up_its_place(settings):
    settings.CHAT_UPLOAD_CONCURRENCY = 1
    release = asyncio.Event()
    seen: list[str] = []

    async def view(request: HttpRequest) -> HttpResponse:
        seen.append(request.GET["n"])
        await release.wait()
        return HttpResponse("ok")

    handler = StandIn(view)
    factory = RequestFactory()
    first = asyncio.create_task(handler.run_get_response(factory.post("/api/files/?n=first")))
    gone = asyncio.create_task(handler.run_get_response(factory.post("/api/files/?n=gone")))
    third = asyncio.create_task(handler.run_get_response(factory.post("/api/files/?n=third")))
    await settle()
    gone.cancel()  # Django cancels the request's task when its client disconnects
    release.set()
    await asyncio.wait_for(asyncio.gather(first, third), 10)
    assert gone.cancelled() and seen == ["first", "third"]


async def test_an_upload_that_waits_for_the_image_worker_steps_aside_and_its_turn_is_given_back_once(settings):
    settings.CHAT_UPLOAD_CONCURRENCY = 1
    release = asyncio.Event()
    started: list[str] = []

    async def view(request: HttpRequest) -> HttpResponse:
        started.append(request.GET["n"])
        if request.GET["n"] == "photo":
            # In the view's thread, as files.imaging.reencode does before it
            # waits for a free worker (twice: the second call does nothing).
            await asyncio.to_thread(step_aside)
            await asyncio.to_thread(step_aside)
        await release.wait()
        return HttpResponse("ok")

    handler = StandIn(view)
    factory = RequestFactory()
    tasks = [asyncio.create_task(handler.run_get_response(factory.post(f"/api/files/?n={n}"))) for n in ("photo", "pdf", "third")]
    for _ in range(200):
        if len(started) >= 2:
            break
        await asyncio.sleep(0.005)
    await settle()
    assert started == ["photo", "pdf"]  # the pdf did not wait for the photo's worker; the third waits for the pdf
    release.set()
    await asyncio.wait_for(asyncio.gather(*tasks), 10)
    assert started == ["photo", "pdf", "third"]
    semaphore = handler.upload_turns._semaphore(asyncio.get_running_loop())
    assert semaphore._value == 1, "every turn given back exactly once"
