"""Bad HTTP bodies (issue 8): never a 500.

1. Schemathesis fuzzes every operation of the OpenAPI document the app serves
   at /api/schema/ (positive and negative data: bodies, query strings, path
   parameters), through the Django WSGI handler in-process, logged in with a
   session and a CSRF token. Operations with path parameters are called twice
   per example: as generated (mostly ids that do not exist) and with the ids
   of a real workspace, channel, message and conversation the caller belongs
   to, so generated bodies reach the services. Check: `not_a_server_error`.
2. Plain tests: bodies that are not JSON, JSON that is not an object, huge and
   non-finite numbers, deep nesting, NUL and lone surrogates in strings ->
   400 on register, login, workspace create, member add, channel create, DM,
   grade and MessagePal send.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from typing import Any

import pytest
import schemathesis
from django.core.wsgi import get_wsgi_application
from hypothesis import HealthCheck
from hypothesis import settings as hsettings
from schemathesis.checks import not_a_server_error

from tests.reliability.record import record

PASSWORD = "fuzz-password-42"
EXAMPLES_PER_OPERATION = 20

APP = get_wsgi_application()
schema = schemathesis.openapi.from_wsgi("/api/schema/", APP)


@dataclass
class World:
    """A logged-in admin of a workspace with a channel, a student's message in
    it (to grade) and a MessagePal conversation with that student."""

    user: Any
    student: Any
    workspace: int
    channel: int
    message: int
    conversation: str
    session_cookie: str
    csrf: str

    def cookies(self, *, anonymous: bool) -> dict[str, str]:
        cookies = {"csrftoken": self.csrf}
        if not anonymous:
            cookies["sessionid"] = self.session_cookie
        return cookies

    def real_ids(self) -> dict[str, Any]:
        return {
            "workspace_id": self.workspace,
            "channel_id": self.channel,
            "message_id": self.message,
            "conversation_id": self.conversation,
        }


def make_world(make_user) -> World:
    from django.middleware.csrf import _get_new_csrf_string
    from django.test import Client

    from messagepal import services as pal_services
    from workspace_chat import services
    from workspace_chat.models import ChannelKind

    user = make_user("fuzzer", display_name="Fuzz Admin", password=PASSWORD)
    student = make_user("student", display_name="Stu Dent", password=PASSWORD)
    workspace = services.workspace_create(user=user, name="Fuzz").workspace
    services.workspace_member_add(actor=user, workspace_id=workspace.id, username="student", role="student")
    channel = services.channel_create(actor=user, workspace_id=workspace.id, name="general", kind=ChannelKind.TEXT, is_private=False)
    message = services.message_send(user=student, channel_id=channel.id, content="homework").message
    pal, _ = pal_services.pal_message_send(sender=student, recipient_id=user.id, content="hello")
    client = Client()
    client.force_login(user)
    return World(
        user=user,
        student=student,
        workspace=workspace.id,
        channel=channel.id,
        message=message["id"],
        conversation=pal["conversationId"],
        session_cookie=client.cookies["sessionid"].value,
        csrf=_get_new_csrf_string(),
    )


@pytest.fixture
def world(make_user, settings) -> World:
    settings.CHAT_RATE_LIMIT_MESSAGES = 100_000  # fuzzed sends are not rate-limited away
    settings.CHAT_RATE_LIMIT_WINDOW = 1
    return make_world(make_user)


# --- 1. schemathesis ------------------------------------------------------------


# What this module tried, for docs/reliability.md (written when the module ends).
TRIED: Counter = Counter()
OPERATIONS: set[str] = set()


@pytest.fixture(scope="module", autouse=True)
def _record_totals():
    yield
    if TRIED["examples"]:
        record("fuzz-http-schemathesis", passed=not TRIED["server_errors"], operations=len(OPERATIONS), examples=TRIED["examples"], server_errors=TRIED["server_errors"])
    if TRIED["bodies"]:
        record("fuzz-http-bodies", passed=not TRIED["bodies_not_400"], endpoints=TRIED["endpoints"], bad_bodies=TRIED["bodies"], not_400=TRIED["bodies_not_400"])


@schema.parametrize()
@hsettings(
    max_examples=EXAMPLES_PER_OPERATION,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)
@pytest.mark.django_db(transaction=True)
def test_no_server_error(case, world):
    # register, login and logout get a session of their own (anonymous, with
    # a CSRF token): logging in or out must not end the fuzzer's session.
    anonymous = case.operation.path in ("/api/auth/register/", "/api/auth/login/", "/api/auth/logout/")
    headers = {"X-CSRFToken": world.csrf}
    cookies = world.cookies(anonymous=anonymous)
    OPERATIONS.add(case.operation.label)
    TRIED["examples"] += 1
    try:
        case.call_and_validate(headers=headers, cookies=cookies, checks=[not_a_server_error])
        if case.path_parameters:
            real = world.real_ids()
            case.path_parameters = {name: real.get(name, value) for name, value in case.path_parameters.items()}
            case.call_and_validate(headers=headers, cookies=cookies, checks=[not_a_server_error])
    except Exception:
        TRIED["server_errors"] += 1
        raise


@pytest.mark.django_db(transaction=True)
def test_the_session_reaches_the_api(world):
    """The fuzz above is logged in: without this, every call would be a 403
    and prove nothing."""
    from werkzeug import Client

    client = Client(APP)
    for name, value in world.cookies(anonymous=False).items():
        client.set_cookie(name, value, domain="localhost")
    r = client.get("/api/auth/me/")
    assert r.status_code == 200 and r.json["username"] == "fuzzer", r.get_data(as_text=True)
    r = client.post(f"/api/workspaces/{world.workspace}/channels/", json={"name": "via-werkzeug"}, headers={"X-CSRFToken": world.csrf})
    assert r.status_code == 201, r.get_data(as_text=True)


# --- 2. plain bad bodies ----------------------------------------------------------


@dataclass(frozen=True)
class Endpoint:
    path: str
    body: dict[str, Any]
    strings: tuple[str, ...]  # string fields
    integers: tuple[str, ...] = ()
    anonymous: bool = False


ENDPOINTS = {
    "register": Endpoint(
        "/api/auth/register/",
        {"username": "newcomer", "password": "pw-0123456789", "displayName": "New"},
        ("username", "password", "displayName"),
        anonymous=True,
    ),
    "login": Endpoint("/api/auth/login/", {"username": "fuzzer", "password": PASSWORD}, ("username", "password"), anonymous=True),
    "workspace": Endpoint("/api/workspaces/", {"name": "Second"}, ("name",)),
    "member": Endpoint("/api/workspaces/{workspace}/members/", {"username": "student", "role": "teacher"}, ("username", "role")),
    "channel": Endpoint("/api/workspaces/{workspace}/channels/", {"name": "random", "kind": "text", "isPrivate": False}, ("name", "kind")),
    "dm": Endpoint("/api/workspaces/{workspace}/dms/", {"userId": "{student}"}, (), ("userId",)),
    "grade": Endpoint("/api/channels/{channel}/messages/{message}/grade/", {"grade": "A-", "feedback": "good"}, ("grade", "feedback")),
    "reaction": Endpoint("/api/channels/{channel}/messages/{message}/reactions/", {"emoji": "👍🏽"}, ("emoji",)),
    "pal_send": Endpoint(
        "/api/messagepal/conversations/{conversation}/messages/", {"content": "hi there", "clientId": "c-1"}, ("content", "clientId")
    ),
}

DEEP = {
    "array 1,000 deep": "[" * 1_000 + "]" * 1_000,
    "array 100,000 deep": "[" * 100_000 + "]" * 100_000,
    "object 50,000 deep": '{"a":' * 50_000 + "1" + "}" * 50_000,
}


def bad_bodies(endpoint: Endpoint) -> list[tuple[str, str, str]]:
    """(name, raw body, rule): rule `400` or `not500` (a value DRF coerces
    by design, e.g. 1e308 for a name, may be accepted; it must not crash)."""
    base = json.dumps(endpoint.body)
    out: list[tuple[str, str, str]] = []
    for text in ["not json", "{", "{'username': 'x'}", '{"a" 1}', "\x00", '{"a":1}\x00', "\ufeff{}", "<xml/>", "", "{}{}"]:
        out.append((f"not JSON {text[:12]!r}", text, "400"))
    for text in ["[]", "[1, 2]", "1", "-1", "1.5", '"text"', "null", "true", base.join("[]")]:
        out.append((f"not an object {text[:12]!r}", text, "400"))
    for name, deep in DEEP.items():
        out.append((f"{name} body", deep, "400"))
    fields = endpoint.strings + endpoint.integers
    first = fields[0]
    for name, deep in DEEP.items():
        out.append((f"{name} in {first}", splice(endpoint.body, first, deep), "400"))
    for field in fields:
        for literal in ["NaN", "Infinity", "-Infinity", "1e999", "-1e999", "1" * 5000]:
            out.append((f"{literal[:10]} in {field}", splice(endpoint.body, field, literal), "400"))
        for literal in ["18446744073709551616", "9007199254740993", "1e308", "-1", "0"]:
            rule = "400" if field in endpoint.integers else "not500"
            out.append((f"{literal} in {field}", splice(endpoint.body, field, literal), rule))
    for field in endpoint.strings:
        for value in ["a\x00b", "\x00", "\ud800", "x\udfff", "\udc00\ud800"]:
            out.append((f"{value!r} in {field}", json.dumps({**endpoint.body, field: value}), "400"))
        out.append((f"raw NUL byte in {field}", splice(endpoint.body, field, '"a\x00b"'), "400"))
        for value in ["\u202eevil", "\u200b", "x" * 100_000]:
            out.append((f"{value[:8]!r} in {field}", json.dumps({**endpoint.body, field: value}), "not500"))
    return out


def splice(body: dict[str, Any], field: str, literal: str) -> str:
    rest = json.dumps({k: v for k, v in body.items() if k != field})
    return "{" + json.dumps(field) + ":" + literal + ("," + rest[1:] if rest != "{}" else "}")


def fill(world: World, endpoint: Endpoint, raw: str) -> tuple[str, str]:
    ids = {"workspace": world.workspace, "channel": world.channel, "message": world.message, "conversation": world.conversation}
    return endpoint.path.format(**ids), raw.replace('"{student}"', str(world.student.id))


def client_for(world: World, endpoint: Endpoint):
    from django.test import Client

    client = Client(enforce_csrf_checks=True, raise_request_exception=False)
    client.cookies["csrftoken"] = world.csrf
    if not endpoint.anonymous:
        client.cookies["sessionid"] = world.session_cookie
    return client


def post(world: World, endpoint: Endpoint, raw: str):
    path, body = fill(world, endpoint, raw)
    return client_for(world, endpoint).generic(
        "POST", path, body.encode("utf-8", "surrogatepass"), content_type="application/json", HTTP_X_CSRFTOKEN=world.csrf
    )


@pytest.mark.django_db
@pytest.mark.parametrize("name", list(ENDPOINTS))
def test_the_valid_body_is_accepted(name, world):
    """So the 400s below are the bad part's doing, not a wrong path or login."""
    endpoint = ENDPOINTS[name]
    r = post(world, endpoint, json.dumps(endpoint.body))
    assert r.status_code in (200, 201), r.content


@pytest.mark.django_db
@pytest.mark.parametrize("name", list(ENDPOINTS))
def test_bad_bodies_are_400(name, world):
    """Every bad body of one endpoint, failures collected so that one run
    names them all."""
    endpoint = ENDPOINTS[name]
    failures = []
    cases = bad_bodies(endpoint)
    for case, raw, rule in cases:
        r = post(world, endpoint, raw)
        if r.status_code >= 500 or (rule == "400" and (r.status_code != 400 or "errors" not in r.json())):
            failures.append(f"{r.status_code} for {case}" + ("" if r.status_code >= 500 else f": {r.content[:160]!r}"))
    TRIED.update(endpoints=1, bodies=len(cases), bodies_not_400=len(failures))
    if failures:
        summary = f"{len(failures)} of {len(cases)} bad bodies of POST {endpoint.path} were not answered 400:\n"
        pytest.fail(summary + "\n".join(failures), pytrace=False)
