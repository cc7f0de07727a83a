"""HTTP API of accounts (PROTOCOL.md, "Identity and authentication")."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.test import Client

USER_KEYS = {"id", "username", "displayName"}
PASSWORD = "correct-horse-9"


@pytest.fixture(autouse=True)
def _fast_hasher(settings):
    # Hashing with the production PBKDF2 settings costs ~0.3 s per user.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def post(client: Client, url: str, body: Any, status: int, **extra: Any) -> Any:
    data = body if isinstance(body, str) else json.dumps(body)
    response = client.post(url, data, content_type="application/json", **extra)
    return checked(response, status)


def checked(response: Any, status: int) -> Any:
    """The status must match; the body is returned when it is JSON (a CSRF
    refusal may be Django's HTML page)."""
    assert response.status_code == status, (response.status_code, response.content[:300])
    return response.json() if response.content and response["Content-Type"].startswith("application/json") else None


def get(client: Client, url: str, status: int = 200) -> Any:
    return checked(client.get(url), status)


def register(client: Client, body: Any, status: int = 201) -> Any:
    return post(client, "/api/auth/register/", body, status)


def login(client: Client, username: str, password: str = PASSWORD, status: int = 200) -> Any:
    return post(client, "/api/auth/login/", {"username": username, "password": password}, status)


def field_errors(body: Any, field: str) -> list[str]:
    errors = body["errors"][field]
    assert isinstance(errors, list) and errors and all(isinstance(e, str) and e for e in errors)
    return errors


def csrf_token(client: Client) -> str:
    response = client.get("/api/auth/csrf/")
    assert response.status_code == 204
    return response.cookies["csrftoken"].value


# --- csrf -------------------------------------------------------------------


@pytest.mark.django_db
def test_csrf_answers_204_and_sets_the_cookie(client):
    response = client.get("/api/auth/csrf/")
    assert response.status_code == 204
    assert not response.content
    assert response.cookies["csrftoken"].value


# --- register ---------------------------------------------------------------


@pytest.mark.django_db
def test_register_answers_the_user_object_and_logs_in(client):
    body = register(client, {"username": "erin", "password": PASSWORD, "displayName": "Erin E"})
    assert set(body) == USER_KEYS
    assert body["username"] == "erin" and body["displayName"] == "Erin E"
    assert isinstance(body["id"], int) and body["id"] > 0
    assert client.cookies["sessionid"].value
    assert get(client, "/api/auth/me/") == body


@pytest.mark.django_db
def test_register_without_display_name_shows_the_username(client):
    body = register(client, {"username": "frank", "password": PASSWORD})
    assert body == {"id": body["id"], "username": "frank", "displayName": "frank"}


@pytest.mark.django_db
@pytest.mark.parametrize("taken", ["erin", "ERIN"])
def test_register_duplicate_username_is_400_on_username(client, make_user, taken):
    make_user("erin")
    body = register(client, {"username": taken, "password": PASSWORD}, status=400)
    field_errors(body, "username")
    get(client, "/api/auth/me/", status=403)


@pytest.mark.django_db
@pytest.mark.parametrize("password", ["short", "password", "12345678"])
def test_register_weak_password_is_400_on_password(client, password):
    body = register(client, {"username": "erin", "password": password}, status=400)
    field_errors(body, "password")
    login(client, "erin", password, status=400)


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("payload", "fields"),
    [
        ({}, {"username", "password"}),
        ({"username": "erin"}, {"password"}),
        ({"password": PASSWORD}, {"username"}),
        ({"username": "has space", "password": PASSWORD}, {"username"}),
    ],
)
def test_register_bad_fields_are_400_with_field_errors(client, payload, fields):
    body = register(client, payload, status=400)
    assert set(body["errors"]) == fields
    for field in fields:
        field_errors(body, field)


@pytest.mark.django_db
@pytest.mark.parametrize("raw", ["not json", "{", "[1, 2]", '"erin"', "null"])
def test_register_non_object_body_is_400_not_500(client, raw):
    body = register(client, raw, status=400)
    assert "errors" in body or "detail" in body


# --- login / logout / me ------------------------------------------------------


@pytest.mark.django_db
def test_login_answers_the_user_and_sets_sessionid(client, make_user):
    user = make_user("erin", display_name="Erin E")
    response = client.post("/api/auth/login/", {"username": "erin", "password": PASSWORD}, content_type="application/json")
    assert response.status_code == 200
    assert response.json() == {"id": user.id, "username": "erin", "displayName": "Erin E"}
    assert response.cookies["sessionid"].value
    assert get(client, "/api/auth/me/")["id"] == user.id


@pytest.mark.django_db
@pytest.mark.parametrize(("username", "password"), [("erin", "wrong-password-1"), ("nobody", PASSWORD), ("erin", "")])
def test_login_bad_credentials_is_400(client, make_user, username, password):
    make_user("erin")
    body = login(client, username, password, status=400)
    assert body["errors"]
    assert "sessionid" not in client.cookies or not client.cookies["sessionid"].value
    get(client, "/api/auth/me/", status=403)


@pytest.mark.django_db
def test_login_of_a_deactivated_user_is_400(client, make_user):
    user = make_user("erin")
    user.is_active = False
    user.save(update_fields=["is_active"])
    login(client, "erin", status=400)


@pytest.mark.django_db
def test_logout_is_204_then_me_is_403(client, make_user):
    make_user("erin")
    login(client, "erin")
    assert post(client, "/api/auth/logout/", {}, 204) is None
    get(client, "/api/auth/me/", status=403)


@pytest.mark.django_db
def test_me_is_403_when_anonymous(client):
    body = get(client, "/api/auth/me/", status=403)
    assert "detail" in body


# --- user search ---------------------------------------------------------------


def search(client: Client, text: str) -> list[dict[str, Any]]:
    body = get(client, f"/api/users/?search={text}")
    assert isinstance(body, list)
    for user in body:
        assert set(user) == USER_KEYS
    return body


def classmates(admin, *others) -> int:
    """A workspace of `admin` with `others` as students: the search finds
    only people who share a workspace (PROTOCOL.md part 2, "Who can reach whom")."""
    from workspace_chat import services

    workspace = services.workspace_create(user=admin, name="Class").workspace
    for other in others:
        services.workspace_member_add(actor=admin, workspace_id=workspace.id, username=other.username, role="student")
    return workspace.id


@pytest.mark.django_db
def test_user_search_is_case_insensitive_and_capped_at_20(client, make_user):
    pupils = [make_user(f"pupil{n:02d}") for n in range(25)]
    teacher = make_user("teacher1", display_name="Ms Pupilsworth")
    searcher = make_user("searcher")
    classmates(teacher, searcher, *pupils)
    client.force_login(searcher)
    found = search(client, "PuPiL")
    assert len(found) == 20
    assert all("pupil" in (u["username"] + u["displayName"]).lower() for u in found)
    assert [u["username"] for u in search(client, "pupil07")] == ["pupil07"]
    assert [u["username"] for u in search(client, "pupilsworth")] == ["teacher1"]
    assert search(client, "zzz-nothing") == []


@pytest.mark.django_db
def test_user_search_excludes_inactive_users(client, make_user):
    gone = make_user("ghost1")
    kept = make_user("ghost2")
    searcher = make_user("searcher")
    classmates(searcher, gone, kept)
    gone.is_active = False
    gone.save(update_fields=["is_active"])
    client.force_login(searcher)
    assert [u["username"] for u in search(client, "ghost")] == ["ghost2"]


@pytest.mark.django_db
def test_user_search_finds_only_people_who_share_a_workspace(client, make_user):
    me, classmate, other_class, stranger = (make_user(name) for name in ("me", "mate1", "mate2", "mate3"))
    classmates(me, classmate)
    classmates(other_class, me)  # a second workspace of mine, with its own admin
    ai = make_user("mate5")
    ai.is_ai = True
    ai.save(update_fields=["is_ai"])
    classmates(ai, me)
    client.force_login(me)
    assert [u["username"] for u in search(client, "mate")] == ["mate1", "mate2"]  # never the stranger, the AI or me
    assert [u["username"] for u in search(client, "")] == ["mate1", "mate2"]
    assert search(client, "me") == [] and search(client, "mate3") == []
    client.force_login(stranger)
    assert search(client, "") == [] and search(client, "mate1") == []


@pytest.mark.django_db
def test_user_search_finds_anyone_when_the_operator_allows_it(client, make_user, settings):
    me = make_user("me")
    make_user("mate1")
    settings.CHAT_MESSAGEPAL_SCOPE = "anyone"
    client.force_login(me)
    assert [u["username"] for u in search(client, "mate")] == ["mate1"]
    settings.CHAT_MESSAGEPAL_SCOPE = "everyone!"  # anything else: workspace
    assert search(client, "mate") == []


@pytest.mark.django_db
@pytest.mark.parametrize("text", ["a%00b", "%00"])
def test_user_search_with_nul_is_400(client, make_user, text):
    client.force_login(make_user("searcher"))
    body = get(client, f"/api/users/?search={text}", status=400)
    assert field_errors(body, "search")


@pytest.mark.django_db
def test_user_search_is_403_when_anonymous(client, make_user):
    make_user("erin")
    get(client, "/api/users/?search=erin", status=403)


# --- CSRF ------------------------------------------------------------------------


@pytest.mark.django_db
def test_csrf_is_enforced_on_a_logged_in_post(make_user):
    client = Client(enforce_csrf_checks=True)
    client.force_login(make_user("erin"))
    post(client, "/api/workspaces/", {"name": "No token"}, 403)
    token = csrf_token(client)
    post(client, "/api/workspaces/", {"name": "Bad token"}, 403, HTTP_X_CSRFTOKEN="x" * 32)
    assert post(client, "/api/workspaces/", {"name": "With token"}, 201, HTTP_X_CSRFTOKEN=token)["role"] == "admin"
    post(client, "/api/auth/logout/", {}, 403)
    post(client, "/api/auth/logout/", {}, 204, HTTP_X_CSRFTOKEN=token)
    get(client, "/api/auth/me/", status=403)


@pytest.mark.django_db
@pytest.mark.parametrize("url", ["/api/auth/login/", "/api/auth/register/"])
def test_csrf_is_enforced_on_anonymous_login_and_register(make_user, url):
    """PROTOCOL.md: CSRF is enforced on unsafe methods, and /api/auth/csrf/
    exists so that a client holds a token before it logs in (login CSRF)."""
    make_user("erin")
    client = Client(enforce_csrf_checks=True)
    token = csrf_token(client)
    body = {"username": "erin" if url.endswith("login/") else "newbie", "password": PASSWORD}
    post(client, url, body, 403)
    get(client, "/api/auth/me/", status=403)
    post(client, url, body, 200 if url.endswith("login/") else 201, HTTP_X_CSRFTOKEN=token)
    assert get(client, "/api/auth/me/")["username"] == body["username"]
