"""Django settings. Every knob is an environment variable with an embedded default
(PROTOCOL.md, "Operations"), so `make run` works with nothing configured."""

from __future__ import annotations

import json
import os
from pathlib import Path
from urllib.parse import unquote, urlsplit

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from realtime.redis import layer_host, parse_sentinels

BASE_DIR = Path(__file__).resolve().parent.parent


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    return default if value in (None, "") else int(value)


def env_float(name: str, default: float) -> float:
    value = os.environ.get(name)
    return default if value in (None, "") else float(value)


DEBUG = env_bool("DJANGO_DEBUG", True)
DEV_SECRET_KEY = "dev-insecure-secret-key-change-me-0123456789abcdefghijklmnopqrstuvwxyz"
SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY") or DEV_SECRET_KEY
ALLOWED_HOSTS = [h.strip() for h in os.environ.get("DJANGO_ALLOWED_HOSTS", "127.0.0.1,localhost,[::1]").split(",") if h.strip()]
# Pages of other origins that may open WebSockets here (scheme://host:port);
# this site's own origin always may (chatsite.origins).
DJANGO_ALLOWED_ORIGINS = [o.strip() for o in os.environ.get("DJANGO_ALLOWED_ORIGINS", "").split(",") if o.strip()]
# Trust X-Forwarded-For/-Proto from a proxy in front (only then: anyone
# could send them otherwise), and only from the proxies listed here
# (addresses or networks; chatsite.proxy).
CHAT_TRUST_PROXY = env_bool("CHAT_TRUST_PROXY", False)
CHAT_TRUSTED_PROXIES = [p.strip() for p in os.environ.get("CHAT_TRUSTED_PROXIES", "127.0.0.0/8,::1").split(",") if p.strip()]
CSRF_TRUSTED_ORIGINS = [
    f"{scheme}://{h}" for h in ALLOWED_HOSTS if h != "*" and not h.startswith(".") for scheme in ("http", "https")
]

INSTALLED_APPS = [
    "chatsite",  # before daphne: its runserver installs the daphne adapter
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "channels",
    "realtime",
    "messagestore",
    "accounts",
    "presence",
    "assistant",
    "workspace_chat",
    "messagepal",
    "notifications",
    "search",
    "files",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "chatsite.headers.SecurityHeadersMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    # The page's language: the language cookie (the header's picker), else
    # the browser's Accept-Language, else LANGUAGE_CODE (docs/i18n.md).
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "chatsite.urls"
ASGI_APPLICATION = "chatsite.asgi.application"
WSGI_APPLICATION = None

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL") or f"sqlite:///{BASE_DIR / 'db.sqlite3'}",
        # Reuse connections: opening a PostgreSQL connection costs more than
        # most queries, and the server does all database work on one thread.
        conn_max_age=env_int("DATABASE_CONN_MAX_AGE", 60),
        conn_health_checks=True,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # IMMEDIATE: a writer takes the lock at BEGIN, so two writers queue on the
    # busy timeout instead of deadlocking on a read->write lock upgrade.
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 20,
        "transaction_mode": "IMMEDIATE",
        # FULL: an acknowledged message survives a power loss (NORMAL, WAL's
        # usual choice, can lose the last transactions).
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;",
    }
    # A file (not :memory:) so that threads and forked processes share it; one
    # per test process so that two runs never collide.
    DATABASES["default"]["TEST"] = {"NAME": str(BASE_DIR / f".test-db-{os.getpid()}.sqlite3")}
else:
    # One test database per test process, so two runs on one server never collide.
    DATABASES["default"]["TEST"] = {"NAME": f"test_{DATABASES['default']['NAME']}_{os.getpid()}"}

AUTH_USER_MODEL = "accounts.User"
# Every password check goes through the login throttle (accounts.throttle).
AUTHENTICATION_BACKENDS = ["accounts.backends.ThrottledModelBackend"]
CHAT_LOGIN_FAILURES = env_int("CHAT_LOGIN_FAILURES", 5)
CHAT_LOGIN_WINDOW = env_int("CHAT_LOGIN_WINDOW", 900)
# Registrations per client address (DRF rate syntax), across processes.
CHAT_REGISTER_RATE = os.environ.get("CHAT_REGISTER_RATE", "30/hour")
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 8}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

if env_bool("CHAT_TEST_FAST_PASSWORD_HASHER", False):
    # Test runs only: registering hundreds of users with PBKDF2 would dominate them.
    PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

# English is the default (PROTOCOL.md fixes the UI's accessible names in it);
# every other language is in locale/ (docs/i18n.md says how to add one).
LANGUAGE_CODE = "en"
LANGUAGES = [("en", "English"), ("es", "Español")]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
# collectstatic's target, served by nginx in production (deploy/nginx.conf).
STATIC_ROOT = Path(os.environ.get("CHAT_STATIC_ROOT", str(BASE_DIR / ".staticfiles")))
# Serve straight from the finders too, so `daphne chatsite.asgi:application`
# works without collectstatic (PROTOCOL.md: the server serves its own files).
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = DEBUG

# Uploaded files (files/): Django's storage API. By default the file system
# under CHAT_MEDIA_ROOT, served by the app itself after its access check
# (never by a static file server: files are private to a channel).
# CHAT_FILE_STORAGE=s3 keeps them in an S3-compatible object store
# (django-storages' S3Storage) named by CHAT_S3_ENDPOINT_URL, CHAT_S3_BUCKET,
# CHAT_S3_ACCESS_KEY_ID, CHAT_S3_SECRET_ACCESS_KEY, CHAT_S3_REGION (path-style
# addressing, private objects; `scripts/services up s3` prints them for a
# local gofakes3). Any other value names a backend's class, with
# CHAT_FILE_STORAGE_OPTIONS as JSON.
MEDIA_ROOT = Path(os.environ.get("CHAT_MEDIA_ROOT", str(BASE_DIR / "media")))
_file_storage = os.environ.get("CHAT_FILE_STORAGE", "django.core.files.storage.FileSystemStorage")
_file_storage_options = json.loads(os.environ.get("CHAT_FILE_STORAGE_OPTIONS", "{}"))
if _file_storage == "s3":
    from chatsite.s3 import s3_options

    _file_storage = "storages.backends.s3.S3Storage"
    _file_storage_options = {**s3_options(os.environ), **_file_storage_options}
STORAGES = {
    "default": {"BACKEND": _file_storage, "OPTIONS": _file_storage_options},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
CHAT_UPLOAD_QUOTA_BYTES = env_int("CHAT_UPLOAD_QUOTA_BYTES", 1024**3)
CHAT_FILE_GRACE = env_int("CHAT_FILE_GRACE", 86400)  # seconds an unused file is kept
CHAT_MAX_IMAGE_PIXELS = env_int("CHAT_MAX_IMAGE_PIXELS", 25_000_000)  # larger images are refused (decompression bombs)
# Images are re-encoded in worker processes (files.imaging), one image each at
# a time, at a lower CPU priority; one that takes longer is kept as an attachment.
CHAT_IMAGE_WORKERS = env_int("CHAT_IMAGE_WORKERS", 1)
# Uploads handled at once per server process; the rest wait their turn
# (chatsite/handler.py: more at once starve the chat of the GIL).
CHAT_UPLOAD_CONCURRENCY = env_int("CHAT_UPLOAD_CONCURRENCY", 2)
if CHAT_UPLOAD_CONCURRENCY < 1:
    raise ImproperlyConfigured(f"CHAT_UPLOAD_CONCURRENCY must be at least 1, not {CHAT_UPLOAD_CONCURRENCY}")
CHAT_IMAGE_NICE = env_int("CHAT_IMAGE_NICE", 10)
CHAT_IMAGE_TIMEOUT = env_float("CHAT_IMAGE_TIMEOUT", 60.0)
FILE_UPLOAD_PERMISSIONS = 0o640
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
LOGIN_URL = "/"

# --- Channels ---------------------------------------------------------------
REDIS_URL = os.environ.get("REDIS_URL", "")
# Redis Sentinel (PROTOCOL.md, "Operations, part 2"): REDIS_SENTINELS
# "host:port,..." and REDIS_SENTINEL_MASTER (the monitored name); they win
# over REDIS_URL. Every Redis client (realtime.redis) asks the Sentinels for
# the primary and follows a failover. REDIS_SENTINEL_DB: the database number.
REDIS_SENTINELS = parse_sentinels(os.environ.get("REDIS_SENTINELS", ""))
REDIS_SENTINEL_MASTER = os.environ.get("REDIS_SENTINEL_MASTER", "").strip()
REDIS_SENTINEL_DB = env_int("REDIS_SENTINEL_DB", 0)
if REDIS_SENTINELS and not REDIS_SENTINEL_MASTER:
    raise ImproperlyConfigured("REDIS_SENTINELS is set without REDIS_SENTINEL_MASTER (the name the Sentinels monitor)")
REDIS_ENABLED = bool(REDIS_SENTINELS or REDIS_URL)
# CHAT_CHANNEL_LAYER picks the channels-redis flavour: `core` (lists per
# channel, BLPOP) or `pubsub` (Redis PUBLISH/SUBSCRIBE); bench/ compares them.
CHAT_CHANNEL_LAYER = os.environ.get("CHAT_CHANNEL_LAYER", "core").strip().lower() or "core"
_layer_host = layer_host(url=REDIS_URL, sentinels=REDIS_SENTINELS, master=REDIS_SENTINEL_MASTER, db=REDIS_SENTINEL_DB)

if REDIS_ENABLED and CHAT_CHANNEL_LAYER == "pubsub":
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
            "CONFIG": {"hosts": [_layer_host]},
        }
    }
elif REDIS_ENABLED:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": [_layer_host], "capacity": 1000, "expiry": 30},
        }
    }
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

# Django's cache: DRF's throttles (registration) count here; Redis when there
# is one (realtime.redis's client, so Sentinel too), so every process shares
# the counts.
CACHES = (
    {"default": {"BACKEND": "realtime.cache.RedisCache", "LOCATION": REDIS_URL or "sentinel", "KEY_PREFIX": "cache"}}
    if REDIS_ENABLED
    else {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
)

# --- Chat limits (PROTOCOL.md) ------------------------------------------------
CHAT_RATE_LIMIT_MESSAGES = env_int("CHAT_RATE_LIMIT_MESSAGES", 5)
CHAT_RATE_LIMIT_WINDOW = env_float("CHAT_RATE_LIMIT_WINDOW", 5.0)
# Typing, read marks, joins and leaves: their own bucket per user.
CHAT_RATE_LIMIT_EVENTS = env_int("CHAT_RATE_LIMIT_EVENTS", 60)
# Open WebSockets per user, across processes; past it: close code 4008.
CHAT_MAX_CONNECTIONS_PER_USER = env_int("CHAT_MAX_CONNECTIONS_PER_USER", 20)
# At most one user_typing per user and channel (or conversation) this often.
CHAT_TYPING_EVERY = env_float("CHAT_TYPING_EVERY", 2.0)
# Channels with more members than this announce no individual joins and
# leaves (`user_presence`); joined_channel.online still lists who is there.
CHAT_PRESENCE_MAX_MEMBERS = env_int("CHAT_PRESENCE_MAX_MEMBERS", 200)
# Redis connections per process for presence, rate limits and connection
# counts (the channel layer has its own); past it, commands wait.
CHAT_REDIS_MAX_CONNECTIONS = env_int("CHAT_REDIS_MAX_CONNECTIONS", 200)
# /metrics answers loopback, or a request with `Authorization: Bearer <this>`.
CHAT_METRICS_TOKEN = os.environ.get("CHAT_METRICS_TOKEN", "")

# Missed-message email (notifications.email, sent by `manage.py chat_worker`):
# EMAIL_URL smtp://[user:password@]host:port (smtp+tls:// for STARTTLS,
# smtps:// for TLS), or console:// to print them; unset, none is sent.
EMAIL_URL = os.environ.get("EMAIL_URL", "").strip()
CHAT_EMAIL_DELAY = env_int("CHAT_EMAIL_DELAY", 600)  # seconds a mention or DM stays unread first
CHAT_EMAIL_SWEEP_EVERY = env_float("CHAT_EMAIL_SWEEP_EVERY", 10.0)
# Links in emails point here (the address users open the chat at).
CHAT_SITE_URL = os.environ.get("CHAT_SITE_URL", "http://127.0.0.1:8000").rstrip("/")
DEFAULT_FROM_EMAIL = os.environ.get("CHAT_EMAIL_FROM", "chat@localhost")
EMAIL_TIMEOUT = 10
if EMAIL_URL:
    _email = urlsplit(EMAIL_URL)
    if _email.scheme in ("smtp", "smtp+tls", "smtps"):
        EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
        EMAIL_HOST = _email.hostname or "127.0.0.1"
        EMAIL_PORT = _email.port or (465 if _email.scheme == "smtps" else 25)
        EMAIL_HOST_USER = unquote(_email.username or "")
        EMAIL_HOST_PASSWORD = unquote(_email.password or "")
        EMAIL_USE_TLS = _email.scheme == "smtp+tls"
        EMAIL_USE_SSL = _email.scheme == "smtps"
    elif _email.scheme == "console":
        EMAIL_BACKEND = "django.core.mail.backends.console.EmailBackend"
    else:
        raise ImproperlyConfigured(f"EMAIL_URL: unknown scheme {_email.scheme!r} (smtp, smtp+tls, smtps or console)")
CHAT_MAX_MESSAGE_LENGTH = env_int("CHAT_MAX_MESSAGE_LENGTH", 4000)
# Authors may edit a message this many seconds after sending it (0: always).
CHAT_EDIT_WINDOW = env_int("CHAT_EDIT_WINDOW", 3600)
# Whom MessagePal connects (and the user search finds): `workspace` (people
# who share a workspace) or `anyone`; any other value means `workspace`.
CHAT_MESSAGEPAL_SCOPE = "anyone" if os.environ.get("CHAT_MESSAGEPAL_SCOPE", "").strip().lower() == "anyone" else "workspace"
# HTTP request bodies: over these, 413 before the body is read (chatsite.limits).
CHAT_MAX_REQUEST_BYTES = env_int("CHAT_MAX_REQUEST_BYTES", 1024 * 1024)
CHAT_MAX_UPLOAD_BYTES = env_int("CHAT_MAX_UPLOAD_BYTES", 25 * 1024 * 1024)
DATA_UPLOAD_MAX_MEMORY_SIZE = CHAT_MAX_REQUEST_BYTES
# Largest inbound WebSocket message; daphne closes with 1009 above it.
CHAT_MAX_FRAME_BYTES = env_int("CHAT_MAX_FRAME_BYTES", 64 * 1024)
CHAT_PING_INTERVAL = env_int("CHAT_PING_INTERVAL", 20)
CHAT_PING_TIMEOUT = env_int("CHAT_PING_TIMEOUT", 30)
# Check every event a consumer sends against its schema (wire.schema); the
# tests turn it on, production leaves it off (it costs a decode per event).
CHAT_CHECK_EVENTS = env_bool("CHAT_CHECK_EVENTS", False)
# Bytes queued for one slow client before the server drops it (never grows memory).
CHAT_MAX_SEND_BUFFER_BYTES = env_int("CHAT_MAX_SEND_BUFFER_BYTES", 1024 * 1024)
# Message store (messagestore): sql | cassandra | mongodb. cassandra falls
# back to mongodb (if MONGODB_URI is set) and then sql when unreachable at
# start-up; mongodb falls back to sql.
CHAT_MESSAGE_STORE = os.environ.get("CHAT_MESSAGE_STORE", "sql").strip().lower() or "sql"
# 0: never fall back to another store (recommended with several processes).
CHAT_STORE_FALLBACK = env_bool("CHAT_STORE_FALLBACK", True)
CASSANDRA_HOSTS = os.environ.get("CASSANDRA_HOSTS", "127.0.0.1")
CASSANDRA_PORT = env_int("CASSANDRA_PORT", 9042)
CASSANDRA_KEYSPACE = os.environ.get("CASSANDRA_KEYSPACE", "chat")
# Replicas of each message: 1 (one node, SimpleStrategy); 3 on a cluster
# (NetworkTopologyStrategy, LOCAL_QUORUM, retries on the next host:
# messagestore/cassandra/policies.py). CASSANDRA_DATACENTER: the local
# datacenter (default: the first contact point's).
CASSANDRA_REPLICATION = env_int("CASSANDRA_REPLICATION", 1)
CASSANDRA_DATACENTER = os.environ.get("CASSANDRA_DATACENTER", "")
MONGODB_URI = os.environ.get("MONGODB_URI", "")
# Seconds a store may take to connect or answer: a dead store fails fast
# instead of hanging a consumer.
CHAT_STORE_TIMEOUT = env_float("CHAT_STORE_TIMEOUT", 3.0)
# django-cassandra-engine: only its model layer is used (messagestore.cassandra
# says why its app is not in INSTALLED_APPS, so no DATABASES["cassandra"]);
# cqlengine creates tables (migrate -> ensure_schema) only with this set.
os.environ.setdefault("CQLENG_ALLOW_SCHEMA_MANAGEMENT", "1")
OPENAI_API_KEY = os.environ.get("OPENAI_API_KEY", "")
OPENAI_BASE_URL = os.environ.get("OPENAI_BASE_URL", "")
OPENAI_MODEL = os.environ.get("OPENAI_MODEL", "gpt-4o-mini")

# runserver reads these; chatsite.server passes the same to the daphne CLI.
DAPHNE_WEBSOCKET_MAX_MESSAGE_SIZE = CHAT_MAX_FRAME_BYTES
DAPHNE_WEBSOCKET_MAX_FRAME_SIZE = CHAT_MAX_FRAME_BYTES

# --- @AI assistant (assistant app) ----------------------------------------------
CHAT_AI_TIMEOUT = env_float("CHAT_AI_TIMEOUT", 20.0)  # seconds for a whole answer
CHAT_AI_MAX_RETRIES = env_int("CHAT_AI_MAX_RETRIES", 2)
CHAT_AI_STREAM = env_bool("CHAT_AI_STREAM", True)
CHAT_AI_CONTEXT_MESSAGES = env_int("CHAT_AI_CONTEXT_MESSAGES", 20)
CHAT_AI_QUOTA_MESSAGES = env_int("CHAT_AI_QUOTA_MESSAGES", 20)  # questions per user...
CHAT_AI_QUOTA_WINDOW = env_float("CHAT_AI_QUOTA_WINDOW", 3600.0)  # ...per this many seconds
CHAT_AI_BREAKER_FAILURES = env_int("CHAT_AI_BREAKER_FAILURES", 3)
CHAT_AI_CONCURRENCY = env_int("CHAT_AI_CONCURRENCY", 4)  # provider calls at once, per process
CHAT_AI_WORKSPACE_HOURLY = env_int("CHAT_AI_WORKSPACE_HOURLY", 200)  # questions per workspace and hour
CHAT_AI_BREAKER_COOLDOWN = env_float("CHAT_AI_BREAKER_COOLDOWN", 30.0)

# --- DRF ----------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["rest_framework.authentication.SessionAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["wire.parsers.JSONParser"],
    "DEFAULT_SCHEMA_CLASS": "wire.http.NestedSerializerSchema",
    "EXCEPTION_HANDLER": "wire.http.exception_handler",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
    # Throttles identify clients by REMOTE_ADDR only: DRF would otherwise
    # believe any X-Forwarded-For. Behind a proxy (CHAT_TRUST_PROXY=1)
    # chatsite.proxy has already put the client's address there.
    "NUM_PROXIES": 0,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Chat platform API",
    "DESCRIPTION": "HTTP half of PROTOCOL.md; the WebSocket half is documented there.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    # Enum components named after what they are, not after the field they appear in.
    "ENUM_NAME_OVERRIDES": {
        "ChannelKindEnum": "workspace_chat.schema.CHANNEL_KINDS",
        "RoleEnum": "workspace_chat.schema.ROLES",
        "RoleChoiceEnum": "workspace_chat.models.Role",
        "MessageTypeEnum": "workspace_chat.schema.MESSAGE_TYPES",
    },
}

# --- Security -------------------------------------------------------------------
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"
CSRF_FAILURE_VIEW = "chatsite.urls.csrf_failure"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
if env_bool("DJANGO_HTTPS", False):
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_SSL_REDIRECT = True
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_HSTS_SECONDS = 31536000
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    SECURE_REDIRECT_EXEMPT = [r"^healthz$"]

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    "loggers": {"django.channels.server": {"level": "WARNING"}},
}
