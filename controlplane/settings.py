"""Tollgate's one settings file. Every value comes from the environment.

Production differs from the embedded default (``make run``) only by variables:
DATABASE_URL and REDIS_URL switch SQLite and the in-process backends for
PostgreSQL and Redis. Secrets may also come from ``<NAME>_FILE``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
from collections.abc import Callable
from pathlib import Path

import dj_database_url
from cryptography.fernet import Fernet
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent


def env(name: str, default: str = "") -> str:
    if name in os.environ:
        return os.environ[name]
    path = os.environ.get(f"{name}_FILE")
    if path:
        return Path(path).read_text().strip()
    return default


def env_bool(name: str, default: bool) -> bool:
    raw = env(name, "1" if default else "0").strip().lower()
    return raw in {"1", "true", "yes", "on"}


def env_int(name: str, default: int) -> int:
    return int(env(name, str(default)))


def env_float(name: str, default: float) -> float:
    return float(env(name, str(default)))


DATA_DIR = Path(env("TOLLGATE_DATA_DIR", str(BASE_DIR / "var"))).resolve()
PRODUCTION = env("TOLLGATE_ENV", "embedded") == "production"


def _local_secret(filename: str, make: Callable[[], str] = lambda: secrets.token_urlsafe(48)) -> str:
    # The embedded default invents its secret once and keeps it beside the
    # database; production must pass TOLLGATE_SECRET_KEY explicitly.
    if PRODUCTION:
        raise RuntimeError("TOLLGATE_SECRET_KEY must be set when TOLLGATE_ENV=production")
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    path = DATA_DIR / filename
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(make())
    return path.read_text().strip()


def _derived(purpose: str) -> bytes:
    # Embedded default only: production refuses to start without its own
    # pepper and encryption keys, since rotating the secret key would
    # otherwise silently break every virtual key and sealed credential.
    return hmac.new(SECRET_KEY.encode(), purpose.encode(), hashlib.sha256).digest()


# Production never invents or derives a secret, nor falls back to SQLite.
PRODUCTION_REQUIRES = ("TOLLGATE_SECRET_KEY", "DATABASE_URL", "TOLLGATE_KEY_PEPPER", "TOLLGATE_ENCRYPTION_KEYS")
if PRODUCTION:
    _missing = [name for name in PRODUCTION_REQUIRES if not env(name).strip()]
    if _missing:
        raise ImproperlyConfigured(
            "TOLLGATE_ENV=production needs " + ", ".join(_missing) + " (each may be given as <NAME>_FILE)."
        )

SECRET_KEY = env("TOLLGATE_SECRET_KEY") or _local_secret("secret_key")
# Debug pages list URL patterns and settings: only when asked for, in any mode.
DEBUG = env_bool("TOLLGATE_DEBUG", False)
ALLOWED_HOSTS = [h for h in env("TOLLGATE_ALLOWED_HOSTS", "*").split(",") if h]
CSRF_TRUSTED_ORIGINS = [o for o in env("TOLLGATE_CSRF_TRUSTED_ORIGINS", "").split(",") if o]

# Virtual keys are stored as HMAC-SHA256(pepper, key). The pepper never sits in
# the database, so a database dump alone cannot be used to test guesses.
KEY_PEPPER = env("TOLLGATE_KEY_PEPPER").encode() or _derived("tollgate.key-pepper")

# Fernet keys for secrets at rest (provider credentials). The first encrypts;
# all decrypt, so a key can be rotated by prepending a new one.
ENCRYPTION_KEYS = [k.strip() for k in env("TOLLGATE_ENCRYPTION_KEYS").split(",") if k.strip()] or [
    base64.urlsafe_b64encode(_derived("tollgate.encryption")).decode()
]
for _key in ENCRYPTION_KEYS:
    try:
        Fernet(_key.encode())
    except ValueError:
        raise ImproperlyConfigured(
            "TOLLGATE_ENCRYPTION_KEYS holds a value that is not a Fernet key (32 url-safe base64 bytes); "
            "make one with: python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())'"
        ) from None

# The audit trail (audit/): checkpoints of the chain's head are signed with this
# Ed25519 key (base64 of 32 bytes, or PEM). The embedded default makes one and
# keeps it beside the database; production without one cannot sign checkpoints
# (check --deploy warns). Public keys of earlier signing keys stay trusted when
# listed in TOLLGATE_AUDIT_TRUSTED_KEYS.
AUDIT_SIGNING_KEY = env("TOLLGATE_AUDIT_SIGNING_KEY") or (
    "" if PRODUCTION else _local_secret("audit_signing_key", lambda: base64.b64encode(secrets.token_bytes(32)).decode())
)
AUDIT_TRUSTED_KEYS = [k.strip() for k in env("TOLLGATE_AUDIT_TRUSTED_KEYS").split(",") if k.strip()]
AUDIT_CHECKPOINT_SECONDS = env_float("TOLLGATE_AUDIT_CHECKPOINT_SECONDS", 3600.0)
# Events older than this many days leave the database (after archiving, when an
# archive is configured); the chain keeps verifying from the archived range's last hash.
AUDIT_RETENTION_DAYS = env_int("TOLLGATE_AUDIT_RETENTION_DAYS", 365)
# Archive: after this many days events move to S3-compatible storage (JSONL and a
# signed manifest per part, audit/archive.py), when a bucket is named.
AUDIT_ARCHIVE_DAYS = env_int("TOLLGATE_AUDIT_ARCHIVE_DAYS", 90)
AUDIT_ARCHIVE_URL = env("TOLLGATE_AUDIT_ARCHIVE_URL")
AUDIT_ARCHIVE_ENDPOINT_URL = env("TOLLGATE_AUDIT_ARCHIVE_ENDPOINT_URL")
AUDIT_ARCHIVE_REGION = env("TOLLGATE_AUDIT_ARCHIVE_REGION", "us-east-1")

# HTTPS only in production. HSTS preload stays the domain owner's call, so its
# check is silenced unless TOLLGATE_HSTS_PRELOAD turns it on.
SECURE_SSL_REDIRECT = env_bool("TOLLGATE_SSL_REDIRECT", PRODUCTION)
SECURE_REDIRECT_EXEMPT = [r"^(healthz|readyz|metrics)/?$"]
SECURE_HSTS_SECONDS = env_int("TOLLGATE_HSTS_SECONDS", 365 * 86400 if PRODUCTION else 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("TOLLGATE_HSTS_INCLUDE_SUBDOMAINS", PRODUCTION)
SECURE_HSTS_PRELOAD = env_bool("TOLLGATE_HSTS_PRELOAD", False)
SILENCED_SYSTEM_CHECKS = [] if SECURE_HSTS_PRELOAD else ["security.W021"]
SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = env_bool("TOLLGATE_SECURE_COOKIES", PRODUCTION)
# Behind a load balancer that ends TLS, requests arrive over plain HTTP: believe
# its X-Forwarded-Proto (or the redirect to HTTPS loops) and its X-Forwarded-Host.
# Only turn this on when every request passes through that proxy.
BEHIND_PROXY = env_bool("TOLLGATE_BEHIND_PROXY", False)
if BEHIND_PROXY:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    USE_X_FORWARDED_HOST = True

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    # Swagger UI and ReDoc served from the package, never a CDN: installs are often air-gapped.
    "drf_spectacular_sidecar",
    "channels",
    "django_htmx",
    "allauth",
    "allauth.account",
    "allauth.mfa",
    "controlplane",
    "governance",
    "audit",
    "ledger",
    "identity",
    "devicelogin",
]

MIDDLEWARE = [
    "controlplane.health.HealthMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "allauth.account.middleware.AccountMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "audit.middleware.RequestContextMiddleware",
]

ROOT_URLCONF = "controlplane.urls"
WSGI_APPLICATION = "controlplane.wsgi.application"
ASGI_APPLICATION = "controlplane.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "controlplane.web.navigation.navigation",
            ]
        },
    }
]

DATABASE_URL = env("DATABASE_URL") or f"sqlite:///{DATA_DIR / 'tollgate.sqlite3'}"
DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=60)}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    DATABASES["default"]["OPTIONS"] = {
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
    }
    DATABASES["default"]["CONN_MAX_AGE"] = 0
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Empty REDIS_URL is the embedded default: file-backed snapshot and usage spool,
# in-process channel layer.
REDIS_URL = env("REDIS_URL")
REDIS_PREFIX = env("TOLLGATE_REDIS_PREFIX", "tollgate:")

if REDIS_URL:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": [REDIS_URL], "prefix": f"{REDIS_PREFIX}asgi"},
        }
    }
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": f"{REDIS_PREFIX}cache",
        }
    }
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

CELERY_BROKER_URL = env("CELERY_BROKER_URL", REDIS_URL or "memory://")
CELERY_TASK_ALWAYS_EAGER = not REDIS_URL and not env("CELERY_BROKER_URL")

# Password checks are throttled per account and per client address, and
# failures audited (controlplane/signin.py); the counters live in the cache
# above: Redis when set, else this process's memory (the embedded default runs
# one control-plane process).
AUTHENTICATION_BACKENDS = ["controlplane.signin.ThrottledModelBackend", "identity.oidc.SsoBackend"]
# Single sign-on (identity/): identity providers are configured per organization in
# the console and API; these only bound the calls made to them. Entra's group
# overage is resolved through Microsoft Graph at this URL.
SSO_HTTP_TIMEOUT_SECONDS = env_float("TOLLGATE_SSO_HTTP_TIMEOUT_SECONDS", 10.0)
SSO_METADATA_CACHE_SECONDS = env_int("TOLLGATE_SSO_METADATA_CACHE_SECONDS", 300)
SSO_GRAPH_URL = env("TOLLGATE_SSO_GRAPH_URL", "https://graph.microsoft.com")
SIGNIN_WINDOW_SECONDS = env_int("TOLLGATE_SIGNIN_WINDOW_SECONDS", 900)
SIGNIN_MAX_FAILURES_PER_ACCOUNT = env_int("TOLLGATE_SIGNIN_MAX_FAILURES_PER_ACCOUNT", 10)
SIGNIN_MAX_FAILURES_PER_ADDRESS = env_int("TOLLGATE_SIGNIN_MAX_FAILURES_PER_ADDRESS", 30)
# API tokens expire: the default lifetime and the longest one may ask for.
API_TOKEN_DAYS = env_int("TOLLGATE_API_TOKEN_DAYS", 90)
API_TOKEN_MAX_DAYS = env_int("TOLLGATE_API_TOKEN_MAX_DAYS", 365)

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
# collectstatic's target (the container image sets it); without one, the
# embedded default serves static files straight from the apps.
STATIC_ROOT = env("TOLLGATE_STATIC_ROOT") or None
WHITENOISE_USE_FINDERS = STATIC_ROOT is None

# The console's sign-in (django-allauth) is the one door for people, the Django
# admin's included (controlplane/urls.py): password, then TOTP when enrolled.
LOGIN_URL = "/accounts/login/"
LOGIN_REDIRECT_URL = "/"
ACCOUNT_LOGOUT_REDIRECT_URL = "/accounts/login/"
ACCOUNT_ADAPTER = "controlplane.web.accounts.AccountAdapter"
ACCOUNT_LOGIN_METHODS = {"username"}
ACCOUNT_SIGNUP_FIELDS = ["username*", "email*", "password1*", "password2*"]
ACCOUNT_EMAIL_VERIFICATION = "none"
ACCOUNT_LOGOUT_ON_GET = False
ACCOUNT_SESSION_REMEMBER = None
# Failed passwords are throttled once, by ThrottledModelBackend, with the same
# counters for the console, the API and the admin; allauth keeps its limits on
# the rest (password-reset mails, reauthentication).
ACCOUNT_RATE_LIMITS = {"login_failed": None}
MFA_SUPPORTED_TYPES = ["totp", "recovery_codes"]
MFA_ADAPTER = "controlplane.web.accounts.MfaAdapter"
MFA_FORMS = {"authenticate": "controlplane.web.accounts.MfaAuthenticateForm"}
MFA_TOTP_ISSUER = env("TOLLGATE_MFA_ISSUER", "Tollgate")
# Password-reset mail: printed on the terminal in the embedded default; SMTP
# (TOLLGATE_EMAIL_HOST…) in production.
EMAIL_BACKEND = env(
    "TOLLGATE_EMAIL_BACKEND",
    "django.core.mail.backends.smtp.EmailBackend" if PRODUCTION else "django.core.mail.backends.console.EmailBackend",
)
EMAIL_HOST = env("TOLLGATE_EMAIL_HOST", "localhost")
EMAIL_PORT = env_int("TOLLGATE_EMAIL_PORT", 25)
EMAIL_HOST_USER = env("TOLLGATE_EMAIL_USER")
EMAIL_HOST_PASSWORD = env("TOLLGATE_EMAIL_PASSWORD")
EMAIL_USE_TLS = env_bool("TOLLGATE_EMAIL_TLS", False)
DEFAULT_FROM_EMAIL = env("TOLLGATE_EMAIL_FROM", "tollgate@localhost")
FORMS_URLFIELD_ASSUME_HTTPS = True

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "controlplane.api.authentication.ApiTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PARSER_CLASSES": [
        "controlplane.api.parsers.JSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.LimitOffsetPagination",
    "PAGE_SIZE": 100,
    "EXCEPTION_HANDLER": "controlplane.api.errors.exception_handler",
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Tollgate control plane API",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # Names for choice sets that share a field name across resources ("kind", "status").
    "ENUM_NAME_OVERRIDES": {
        "ProviderKindEnum": "governance.models.ProviderKind",
        "AlertChannelKindEnum": "governance.models.AlertChannelKind",
        "KeyStatusEnum": "governance.models.KeyStatus",
        "DeliveryStatusEnum": "governance.models.DeliveryStatus",
        "MembershipRoleEnum": "governance.models.Role",
        "SessionAgentRoleEnum": ["main", "subagent"],
    },
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env("TOLLGATE_LOG_LEVEL", "INFO")},
    "loggers": {"django.db.backends": {"level": "INFO"}},
}

# --- data plane --------------------------------------------------------------
# Read once at worker start (dataplane/config.py), never per request.
GATEWAY_MAX_BODY_BYTES = env_int("TOLLGATE_MAX_BODY_BYTES", 32 * 1024 * 1024)
# A request body sent in pieces must be complete within this many seconds.
GATEWAY_BODY_READ_TIMEOUT = env_float("TOLLGATE_BODY_READ_TIMEOUT", 60.0)
GATEWAY_SNAPSHOT_POLL_SECONDS = env_float("TOLLGATE_SNAPSHOT_POLL_SECONDS", 0.25)
GATEWAY_UPSTREAM_CONNECT_TIMEOUT = env_float("TOLLGATE_UPSTREAM_CONNECT_TIMEOUT", 10.0)
# Until a streaming answer's headers arrive (providers send them at once; a long
# wait means the provider is stuck), until a whole non-streaming answer arrives
# (it comes only when the model has finished), and between two chunks of a
# stream (thinking pauses are long; Tollgate pings the client meanwhile).
GATEWAY_UPSTREAM_FIRST_BYTE_TIMEOUT = env_float("TOLLGATE_UPSTREAM_FIRST_BYTE_TIMEOUT", 120.0)
GATEWAY_UPSTREAM_RESPONSE_TIMEOUT = env_float("TOLLGATE_UPSTREAM_RESPONSE_TIMEOUT", 600.0)
GATEWAY_UPSTREAM_IDLE_TIMEOUT = env_float("TOLLGATE_UPSTREAM_IDLE_TIMEOUT", 300.0)
# Requests in flight to one provider from one worker; past it, the next target or a 529.
GATEWAY_UPSTREAM_MAX_CONCURRENCY = env_int("TOLLGATE_UPSTREAM_MAX_CONCURRENCY", 256)
# An SSE keep-alive to the client after this many silent seconds of a stream.
GATEWAY_STREAM_PING_SECONDS = env_float("TOLLGATE_STREAM_PING_SECONDS", 10.0)
# Redis takes a pipeline every 50 ms; the embedded spool writes (and fsyncs) a
# file per flush, so it batches longer.
GATEWAY_EVENT_FLUSH_SECONDS = env_float("TOLLGATE_EVENT_FLUSH_SECONDS", 0.05 if REDIS_URL else 0.25)
GATEWAY_PUBLIC_URL = env("TOLLGATE_GATEWAY_URL", "http://127.0.0.1:8080")
# MCP gateway: the largest tool result relayed to a client (a larger one is an
# MCP error, not a truncated answer), and how long a tools/list waits for an
# upstream that has not connected yet before listing without it.
MCP_MAX_RESULT_BYTES = env_int("TOLLGATE_MCP_MAX_RESULT_BYTES", 4 * 1024 * 1024)
MCP_LIST_WAIT_SECONDS = env_float("TOLLGATE_MCP_LIST_WAIT_SECONDS", 5.0)
CONTROL_PLANE_PUBLIC_URL = env("TOLLGATE_CONTROL_PLANE_URL", "http://127.0.0.1:8000")
# Where the data plane passes Claude Code's sign-in calls (device authorization,
# token, managed settings) that need the database: the control plane as the
# workers reach it, when that is not its public URL.
CONTROL_PLANE_INTERNAL_URL = env("TOLLGATE_CONTROL_PLANE_INTERNAL_URL", CONTROL_PLANE_PUBLIC_URL)
# Lifetime of the bearer a device signed in through the gateway carries, and of
# the refresh token that renews it (each renewal re-checks the user).
SIGNIN_ACCESS_SECONDS = env_int("TOLLGATE_SIGNIN_ACCESS_SECONDS", 3600)
SIGNIN_REFRESH_DAYS = env_int("TOLLGATE_SIGNIN_REFRESH_DAYS", 30)
# Budgets and rate limits: Redis (the main one unless set apart), or in-process
# on the embedded default. When it is unreachable: refuse with 503 (the
# default, so budgets stay hard) or admit and count the lapse in /metrics.
COUNTERS_REDIS_URL = env("TOLLGATE_COUNTERS_REDIS_URL", REDIS_URL)
COUNTERS_FAIL_OPEN = env_bool("TOLLGATE_COUNTERS_FAIL_OPEN", False)
# How often budget spend is copied into the database: with a counter store, as
# the record a lost counter is rebuilt from; on the embedded default, as the
# API's view of spend (the counters live inside the data-plane process).
BUDGET_SPEND_PERSIST_SECONDS = env_float("TOLLGATE_BUDGET_SPEND_PERSIST_SECONDS", 30.0 if COUNTERS_REDIS_URL else 5.0)
SNAPSHOT_FILE = DATA_DIR / "snapshot.json"
SPOOL_DIR = DATA_DIR / "spool"

# Budget warnings by email: SMTP when a host is set, else printed to the
# console (the embedded default), so a warning is never silently dropped.
EMAIL_HOST = env("TOLLGATE_EMAIL_HOST")
EMAIL_PORT = env_int("TOLLGATE_EMAIL_PORT", 587)
EMAIL_HOST_USER = env("TOLLGATE_EMAIL_USER")
EMAIL_HOST_PASSWORD = env("TOLLGATE_EMAIL_PASSWORD")
EMAIL_USE_TLS = env_bool("TOLLGATE_EMAIL_USE_TLS", True)
EMAIL_TIMEOUT = 10
EMAIL_BACKEND = (
    "django.core.mail.backends.smtp.EmailBackend" if EMAIL_HOST else "django.core.mail.backends.console.EmailBackend"
)
DEFAULT_FROM_EMAIL = env("TOLLGATE_EMAIL_FROM", "tollgate@localhost")
