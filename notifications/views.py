"""The unsubscribe link of missed-message emails: works without logging in
(the signed token names the user). GET shows a button (mail scanners follow
links); POST turns the emails off, also as RFC 8058 one-click from the mail
client, so it takes no CSRF token: the token in the path is the proof."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from accounts.models import User
from notifications.email import unsubscribe_user_id


@csrf_exempt
@require_http_methods(["GET", "POST"])
def unsubscribe(request: HttpRequest, token: str) -> HttpResponse:
    user_id = unsubscribe_user_id(token)
    if user_id is None or not User.objects.filter(id=user_id).exists():
        return render(request, "unsubscribe.html", {"state": "invalid"}, status=404)
    if request.method == "POST":
        User.objects.filter(id=user_id).update(email_notifications=False)
        return render(request, "unsubscribe.html", {"state": "done"})
    return render(request, "unsubscribe.html", {"state": "confirm"})
