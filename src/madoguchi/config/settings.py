"""Settings: the only module that reads the environment.

Everything a deployment can change is an environment variable with a typed helper that fails
loudly on a bad value. SQLite under MADOGUCHI_DATA_DIR by default; PostgreSQL by DATABASE_URL.
"""

import os
import secrets
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured
from django.utils.translation import gettext_lazy as _

from madoguchi.lib import lanes

BASE_DIR = Path(__file__).resolve().parent.parent


def env_str(name: str, default: str) -> str:
    return os.environ.get(name, default)


def env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    if raw.lower() in ("1", "true", "yes", "on"):
        return True
    if raw.lower() in ("0", "false", "no", "off"):
        return False
    raise ImproperlyConfigured(f"{name} must be a boolean (true/false), got {raw!r}")


def env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be an integer, got {raw!r}") from None


DATA_DIR = Path(env_str("MADOGUCHI_DATA_DIR", "./var")).resolve()
DATA_DIR.mkdir(parents=True, exist_ok=True)


def _secret_key() -> str:
    """Read SECRET_KEY, or create one per data dir so restarts keep sessions valid."""
    if key := os.environ.get("SECRET_KEY"):
        return key
    path = DATA_DIR / "secret_key"
    if not path.exists():
        path.write_text(secrets.token_urlsafe(50))
        path.chmod(0o600)
    return path.read_text().strip()


SECRET_KEY = _secret_key()
DEBUG = env_bool("DEBUG", False)
ALLOWED_HOSTS = [h for h in env_str("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1],testserver").split(",") if h]
CSRF_TRUSTED_ORIGINS = [o for o in env_str("CSRF_TRUSTED_ORIGINS", "").split(",") if o]
SITE_URL = env_str("SITE_URL", "http://127.0.0.1:8000")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django_tasks",
    "django_tasks_db",
    "ninja",  # serves Swagger UI assets locally for /api/v1/docs
    "madoguchi.accounts",
    "madoguchi.contacts",
    "madoguchi.connectors",
    "madoguchi.inbox",
    "madoguchi.ingest",
    "madoguchi.listening",
    "madoguchi.kb",
    "madoguchi.text",
    "madoguchi.web",
    "madoguchi.webhooks",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "madoguchi.accounts.middleware.UserLocaleMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "madoguchi.config.urls"
ASGI_APPLICATION = "madoguchi.config.asgi.application"
WSGI_APPLICATION = None

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "madoguchi.connectors.context_processors.channel_alerts",
                "madoguchi.inbox.context_processors.outbox_alert",
            ],
        },
    },
]

DATABASE_URL = env_str("DATABASE_URL", f"sqlite:///{DATA_DIR / 'madoguchi.sqlite3'}")
DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=0)}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL lets the web server read while the worker writes; IMMEDIATE avoids upgrade deadlocks.
    DATABASES["default"]["OPTIONS"] = {
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
    DATABASES["default"]["TEST"] = {"NAME": str(DATA_DIR / "test.sqlite3")}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_USER_MODEL = "accounts.User"
PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "inbox:index"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en"
LANGUAGES = [("en", _("English")), ("ja", _("Japanese"))]
LOCALE_PATHS = [BASE_DIR / "locale"]
USE_I18N = True
TIME_ZONE = env_str("TIME_ZONE", "Asia/Tokyo")
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = DATA_DIR / "static"
STATIC_ROOT.mkdir(exist_ok=True)
# Serve app static files straight from the package: no collectstatic step to forget.
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = DEBUG
MEDIA_ROOT = Path(env_str("MADOGUCHI_MEDIA_ROOT", str(DATA_DIR / "media"))).resolve()
ATTACHMENT_MAX_BYTES = env_int("MADOGUCHI_ATTACHMENT_MAX_BYTES", 10 * 1024 * 1024)
INGEST_MAX_TEXT_CHARS = env_int("MADOGUCHI_INGEST_MAX_TEXT_CHARS", 100_000)
# A new message from the same identity on the same account joins its latest unresolved
# conversation if that conversation was active within this many hours.
THREADING_WINDOW_HOURS = env_int("MADOGUCHI_THREADING_WINDOW_HOURS", 72)
OUTBOX_MAX_ATTEMPTS = env_int("MADOGUCHI_OUTBOX_MAX_ATTEMPTS", 8)

SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = False  # the page's JS reads it for htmx / fetch headers
SESSION_COOKIE_SECURE = env_bool("SECURE_COOKIES", False)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True

EMAIL_HOST = env_str("EMAIL_HOST", "")
# Without a mail server configured, mail (password resets) is printed to the console.
EMAIL_BACKEND = env_str(
    "EMAIL_BACKEND",
    "django.core.mail.backends.smtp.EmailBackend" if EMAIL_HOST else "django.core.mail.backends.console.EmailBackend",
)
EMAIL_PORT = env_int("EMAIL_PORT", 25)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "madoguchi@localhost")

# Background tasks: one queue per worker lane (lib/lanes.py), so a reply never waits for an
# embedding pass or a streaming session.
TASKS = {
    "default": {
        "BACKEND": env_str("MADOGUCHI_TASK_BACKEND", "django_tasks_db.DatabaseBackend"),
        "QUEUES": list(lanes.ALL),
    }
}

# Clock-driven tasks every worker runs every few seconds; each claims its rows atomically.
# Rate limits (web chat, web form) and small caches. "local": per process (one web process, the
# default). "database": shared by every process and machine (`madoguchi migrate` creates its
# table: web/apps.py).
CACHE_BACKEND = env_str("MADOGUCHI_CACHE", "local")
if CACHE_BACKEND == "database":
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.db.DatabaseCache", "LOCATION": "madoguchi_cache"}}
elif CACHE_BACKEND == "local":
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
else:
    raise ImproperlyConfigured(f"MADOGUCHI_CACHE must be 'local' or 'database', not {CACHE_BACKEND!r}")

# Outgoing webhooks to loopback/private addresses are refused (SSRF); tests and closed networks
# that deliver to internal receivers turn this on.
WEBHOOK_ALLOW_PRIVATE_TARGETS = env_bool("MADOGUCHI_WEBHOOK_ALLOW_PRIVATE", False)

PERIODIC_TASKS = [
    "madoguchi.inbox.tasks.run_periodic",
    "madoguchi.kb.tasks.run_periodic",
    "madoguchi.connectors.tasks.send_health_alerts",
    "madoguchi.webhooks.tasks.requeue_due_webhooks",
    "madoguchi.connectors.x.tasks.poll_mentions",
    "madoguchi.connectors.x.tasks.listen",
    "madoguchi.connectors.line.tasks.requeue_deliveries",
    "madoguchi.connectors.mastodon.tasks.poll_accounts",
    "madoguchi.connectors.facebook.tasks.check_tokens",
    "madoguchi.connectors.email.tasks.poll_mailboxes",
    "madoguchi.connectors.bluesky.tasks.poll",
    "madoguchi.listening.tasks.run_periodic",
]

# Request bodies (API ingest with base64 attachments) may carry a full-size attachment.
DATA_UPLOAD_MAX_MEMORY_SIZE = ATTACHMENT_MAX_BYTES * 4 // 3 + 1024 * 1024

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}
