"""Browser pages (templates + static ES modules)."""

from django.shortcuts import render
from django.urls import path
from django.views.decorators.csrf import ensure_csrf_cookie


@ensure_csrf_cookie
def index(request):
    return render(request, "index.html")


urlpatterns = [path("", index, name="index")]
