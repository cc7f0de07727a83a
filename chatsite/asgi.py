"""ASGI entry point: behind a trusted proxy, the client's address and scheme
from its headers (chatsite.proxy); then HTTP through the body limit (chatsite.limits) to
Django, WebSockets through Channels with the session (AuthMiddlewareStack)
behind the Origin check (chatsite.origins)."""

import os

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "chatsite.settings")
django.setup(set_prefix=False)  # as django.core.asgi.get_asgi_application

from chatsite.handler import ChatASGIHandler  # noqa: E402

django_asgi_app = ChatASGIHandler()

from channels.auth import AuthMiddlewareStack  # noqa: E402  (needs Django set up)
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402

from chatsite.limits import BodyLimit  # noqa: E402
from chatsite.origins import OriginValidator  # noqa: E402
from chatsite.proxy import ProxyHeaders  # noqa: E402
from chatsite.routing import websocket_urlpatterns  # noqa: E402

application = ProxyHeaders(
    ProtocolTypeRouter(
        {
            "http": BodyLimit(django_asgi_app),
            "websocket": OriginValidator(AuthMiddlewareStack(URLRouter(websocket_urlpatterns))),
        }
    )
)
