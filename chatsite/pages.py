"""Browser pages: Django templates that load plain ES modules from static/.

The pages hold no chat logic; the modules talk to the HTTP API and the
WebSockets of PROTOCOL.md. Every page but `/` and the register page needs a
login (LOGIN_URL is `/`, so a logged-out visitor lands on the login form with
`?next=`). A page that names a workspace, channel or conversation the user may
not see answers 404, like the API.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import path, re_path
from django.views.decorators.csrf import ensure_csrf_cookie

from accounts.models import User
from accounts.schema import UserObject
from accounts.selectors import user_object
from messagepal import selectors as pal_selectors
from wire.errors import NotFound
from workspace_chat import invites, selectors
from workspace_chat.models import STAFF_ROLES, Role


def _user(request: HttpRequest) -> User:
    """The logged-in user (every caller is behind login_required or checked)."""
    assert isinstance(request.user, User)
    return request.user


def _me(request: HttpRequest) -> UserObject:
    return user_object(_user(request))


@ensure_csrf_cookie
def index(request: HttpRequest) -> HttpResponse:
    """The login form when logged out; the user's workspaces when logged in."""
    if not request.user.is_authenticated:
        return render(request, "login.html")
    return render(request, "home.html", {"me": _me(request)})


@ensure_csrf_cookie
def register(request: HttpRequest) -> HttpResponse:
    if request.user.is_authenticated:
        return redirect("index")
    return render(request, "register.html")


@login_required
def invite(request: HttpRequest, code: str) -> HttpResponse:
    """A class join link: the workspace's name and a Join button (POST)."""
    if request.method == "POST":
        try:
            membership = invites.invite_accept(user=_user(request), code=code)
        except NotFound:
            return render(request, "invite.html", status=404)
        return redirect("workspace", workspace_id=membership.workspace_id)
    found = invites.invite_preview(code=code)
    if found is None:
        return render(request, "invite.html", status=404)
    return render(request, "invite.html", {"workspace_name": found.workspace.name, "role": found.role})


@login_required
def workspace(request: HttpRequest, workspace_id: int) -> HttpResponse:
    """A workspace opens on its first visible channel."""
    try:
        membership = selectors.access_workspace(_user(request), workspace_id)
    except NotFound:
        raise Http404("Workspace not found.") from None
    first = selectors.visible_channels(_user(request), membership.workspace).first()
    if first is not None:
        return redirect("channel", workspace_id=workspace_id, channel_id=first.id)
    return _chat_page(request, workspace_id, None)


@login_required
def channel(request: HttpRequest, workspace_id: int, channel_id: int) -> HttpResponse:
    try:
        access = selectors.access_channel(_user(request), channel_id)
    except NotFound:
        raise Http404("Channel not found.") from None
    if access.channel.workspace_id != workspace_id:
        raise Http404("Channel not found.")
    return _chat_page(request, workspace_id, channel_id)


@ensure_csrf_cookie
def _chat_page(request: HttpRequest, workspace_id: int, channel_id: int | None) -> HttpResponse:
    # editWindow: the UI offers "Edit" only while the server would accept it.
    page = {"me": _me(request), "workspaceId": workspace_id, "channelId": channel_id, "editWindow": settings.CHAT_EDIT_WINDOW}
    return render(request, "chat.html", {"me": page["me"], "page": page})


@login_required
@ensure_csrf_cookie
def workspace_settings(request: HttpRequest, workspace_id: int) -> HttpResponse:
    """Members, invites, open reports and (admins) the moderation log, for a
    workspace's admins and teachers; students get a short 403 page saying so,
    non-members 404. The page's module reads and changes everything through
    the HTTP API, which checks every permission again."""
    try:
        membership = selectors.access_workspace(_user(request), workspace_id)
    except NotFound:
        raise Http404("Workspace not found.") from None
    context = {"me": _me(request), "workspace_id": workspace_id, "workspace_name": membership.workspace.name}
    if membership.role not in STAFF_ROLES:
        return render(request, "settings.html", {**context, "forbidden": True}, status=403)
    page = {"me": context["me"], "workspaceId": workspace_id, "role": membership.role}
    return render(request, "settings.html", {**context, "page": page, "is_admin": membership.role == Role.ADMIN})


@login_required
@ensure_csrf_cookie
def messagepal(request: HttpRequest, conversation_id: str | None = None) -> HttpResponse:
    other = None
    if conversation_id is not None:
        try:
            low, high = pal_selectors.access_conversation(_user(request), conversation_id)
        except NotFound:
            raise Http404("Conversation not found.") from None
        other_user = User.objects.filter(id=high if request.user.id == low else low, is_active=True).first()
        if other_user is None:
            raise Http404("Conversation not found.")
        other = user_object(other_user)
    page = {"me": _me(request), "conversationId": conversation_id, "otherUser": other, "editWindow": settings.CHAT_EDIT_WINDOW}
    return render(request, "messagepal.html", {"me": page["me"], "page": page})


urlpatterns = [
    path("", index, name="index"),
    path("register/", register, name="register"),
    path("workspaces/<id:workspace_id>/", workspace, name="workspace"),
    path("workspaces/<id:workspace_id>/channels/<id:channel_id>/", channel, name="channel"),
    path("workspaces/<id:workspace_id>/settings/", workspace_settings, name="workspace-settings"),
    path("messagepal/", messagepal, name="messagepal"),
    path("invite/<str:code>/", invite, name="invite"),
    path("invite/<str:code>", invite),
    re_path(r"^messagepal/(?P<conversation_id>conv_[0-9]{1,16}_[0-9]{1,16})/$", messagepal, name="messagepal-conversation"),
]
