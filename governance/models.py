from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.db import models
from django.utils import timezone


class Role(models.TextChoices):
    ADMIN = "admin", "Admin"
    DEVELOPER = "developer", "Developer"
    VIEWER = "viewer", "Viewer"


class Organization(models.Model):
    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=100, unique=True)
    # Glob patterns; empty means every model. Intersected with team and key lists.
    allowed_models = models.JSONField(default=list, blank=True)
    # Off: a member of a team makes only keys of that team, so team budgets and
    # allowlists cannot be stepped around. An admin may allow team-less keys.
    allow_teamless_keys = models.BooleanField(default=False)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Team(models.Model):
    organization = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="teams")
    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=100)
    allowed_models = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["organization", "slug"], name="team_slug_unique_in_org")
        ]

    def __str__(self) -> str:
        return f"{self.organization.slug}/{self.slug}"


class Membership(models.Model):
    """A user's place in an organization: their role there and, optionally, their team."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships"
    )
    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="memberships"
    )
    team = models.ForeignKey(
        Team, null=True, blank=True, on_delete=models.SET_NULL, related_name="memberships"
    )
    role = models.CharField(max_length=20, choices=Role.choices, default=Role.DEVELOPER)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "organization"], name="one_membership_per_org")
        ]

    def __str__(self) -> str:
        return f"{self.user} in {self.organization} ({self.role})"


class ProviderKind(models.TextChoices):
    ANTHROPIC = "anthropic", "Anthropic"
    BEDROCK = "bedrock", "AWS Bedrock"
    VERTEX = "vertex", "Google Vertex AI"
    OPENAI = "openai", "OpenAI"
    AZURE_OPENAI = "azure_openai", "Azure OpenAI"
    GEMINI = "gemini", "Gemini API"
    # Mistral, Groq, DeepSeek, Together, OpenRouter, Fireworks, xAI, Ollama, vLLM…:
    # one adapter, the base URL says which (see OPENAI_COMPATIBLE_PRESETS).
    OPENAI_COMPATIBLE = "openai_compatible", "OpenAI-compatible"


OPENAI_COMPATIBLE_PRESETS = {
    "mistral": "https://api.mistral.ai/v1",
    "groq": "https://api.groq.com/openai/v1",
    "deepseek": "https://api.deepseek.com/v1",
    "together": "https://api.together.xyz/v1",
    "openrouter": "https://openrouter.ai/api/v1",
    "fireworks": "https://api.fireworks.ai/inference/v1",
    "xai": "https://api.x.ai/v1",
    "ollama": "http://127.0.0.1:11434/v1",
    "vllm": "http://127.0.0.1:8000/v1",
}


class Provider(models.Model):
    name = models.CharField(max_length=100, unique=True)
    kind = models.CharField(max_length=30, choices=ProviderKind.choices)
    base_url = models.URLField(max_length=500)
    # Fernet token (governance/sealing.py); never the plaintext.
    credential_sealed = models.TextField(blank=True, default="")
    # What a kind needs beyond URL and secret: region, project_id/location,
    # api_version, beta_allowlist… (never secrets: those go in the credential).
    settings = models.JSONField(default=dict, blank=True)
    # The weight of the provider's own credential among its ProviderCredentials.
    credential_weight = models.PositiveIntegerField(default=1)
    # What this deployment bills relative to the list price of a model it has no
    # price row of its own for: 1.1 for Bedrock's and Vertex's regional endpoints,
    # which cost 10% more than their global ones.
    price_multiplier = models.DecimalField(max_digits=6, decimal_places=4, default=Decimal(1))
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class ProviderCredential(models.Model):
    """A further credential for a provider (another API key, AWS account, service
    account), used alongside the provider's own in proportion to ``weight``:
    spreading one provider's traffic over several keys spreads its rate limits."""

    provider = models.ForeignKey(Provider, on_delete=models.CASCADE, related_name="credentials")
    name = models.CharField(max_length=100)
    credential_sealed = models.TextField()
    weight = models.PositiveIntegerField(default=1)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["id"]
        constraints = [models.UniqueConstraint(fields=["provider", "name"], name="provider_credential_name_unique")]

    def __str__(self) -> str:
        return f"{self.provider} / {self.name}"


class KeyStatus(models.TextChoices):
    ACTIVE = "active", "Active"
    DISABLED = "disabled", "Disabled"


class VirtualKey(models.Model):
    """A credential handed to an engineer or a service in place of a provider key.

    Only ``prefix`` (shown in lists and logs) and the peppered HMAC ``digest`` are
    stored; the secret is shown once, when the key is created.
    """

    organization = models.ForeignKey(
        Organization, on_delete=models.PROTECT, related_name="virtual_keys"
    )
    team = models.ForeignKey(
        Team, null=True, blank=True, on_delete=models.PROTECT, related_name="virtual_keys"
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="virtual_keys",
    )
    name = models.CharField(max_length=200)
    prefix = models.CharField(max_length=32, unique=True)
    digest = models.CharField(max_length=64, unique=True)
    # After a rotation the old secret keeps working until ``previous_valid_until``.
    previous_digest = models.CharField(max_length=64, blank=True, default="")
    previous_valid_until = models.DateTimeField(null=True, blank=True)
    status = models.CharField(max_length=20, choices=KeyStatus.choices, default=KeyStatus.ACTIVE)
    expires_at = models.DateTimeField(null=True, blank=True)
    # Glob patterns (fnmatch) such as "claude-sonnet-*"; empty means every model.
    allowed_models = models.JSONField(default=list, blank=True)
    # What an admin set binds the key's owner, who may narrow it but not undo it:
    # the allowlist an admin gave (empty: none), the latest expiry an admin
    # allows, and whether an admin disabled the key.
    admin_allowed_models = models.JSONField(default=list, blank=True)
    admin_expires_at = models.DateTimeField(null=True, blank=True)
    disabled_by_admin = models.BooleanField(default=False)
    created_at = models.DateTimeField(default=timezone.now)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def is_expired(self) -> bool:
        return self.expires_at is not None and self.expires_at <= timezone.now()


class ModelPrice(models.Model):
    """USD per million tokens (web search: per 1,000 calls). Cost is computed from
    the provider's reported usage.

    A row without ``provider`` is the model's list price; a row with one is what
    that provider bills for the model instead (Bedrock and Vertex list prices can
    differ). Above ``long_context_threshold`` prompt tokens (input + cache reads +
    cache writes) a request is billed at the ``long_*`` rates, on every token of
    it, output included; 0 means the model has a single tier.
    """

    model = models.CharField(max_length=200)
    provider = models.ForeignKey(
        Provider, null=True, blank=True, on_delete=models.CASCADE, related_name="prices"
    )
    input_per_mtok = models.DecimalField(max_digits=12, decimal_places=6)
    output_per_mtok = models.DecimalField(max_digits=12, decimal_places=6)
    # The 5-minute cache write; Claude Code writes most of its cache for an hour.
    cache_write_per_mtok = models.DecimalField(max_digits=12, decimal_places=6, default=Decimal(0))
    cache_write_1h_per_mtok = models.DecimalField(max_digits=12, decimal_places=6, default=Decimal(0))
    cache_read_per_mtok = models.DecimalField(max_digits=12, decimal_places=6, default=Decimal(0))
    web_search_per_1k = models.DecimalField(max_digits=12, decimal_places=6, default=Decimal(0))
    long_context_threshold = models.PositiveIntegerField(default=0)
    long_input_per_mtok = models.DecimalField(max_digits=12, decimal_places=6, default=Decimal(0))
    long_output_per_mtok = models.DecimalField(max_digits=12, decimal_places=6, default=Decimal(0))
    long_cache_write_per_mtok = models.DecimalField(max_digits=12, decimal_places=6, default=Decimal(0))
    long_cache_write_1h_per_mtok = models.DecimalField(max_digits=12, decimal_places=6, default=Decimal(0))
    long_cache_read_per_mtok = models.DecimalField(max_digits=12, decimal_places=6, default=Decimal(0))
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["model", "provider_id"]
        constraints = [
            models.UniqueConstraint(
                fields=["model"], condition=models.Q(provider__isnull=True), name="price_one_list_price_per_model"
            ),
            models.UniqueConstraint(
                fields=["model", "provider"],
                condition=models.Q(provider__isnull=False),
                name="price_one_override_per_provider_model",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.model} on {self.provider}" if self.provider_id else self.model


class Level(models.TextChoices):
    ORGANIZATION = "organization", "Organization"
    TEAM = "team", "Team"
    USER = "user", "User"
    KEY = "key", "Key"


class Period(models.TextChoices):
    DAILY = "daily", "Daily"
    WEEKLY = "weekly", "Weekly"
    MONTHLY = "monthly", "Monthly"
    YEARLY = "yearly", "Yearly"


class Metric(models.TextChoices):
    REQUESTS = "requests", "Requests"
    TOKENS = "tokens", "Tokens"


class ScopedPolicy(models.Model):
    """Something held by one level of the organization → team → user → key chain.

    ``organization`` is always set; ``team``, ``user`` or ``key`` narrow it to
    that level (a user's policy covers their spend in this organization only).
    """

    level = models.CharField(max_length=20, choices=Level.choices)
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    team = models.ForeignKey(Team, null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    key = models.ForeignKey(VirtualKey, null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        abstract = True

    @property
    def target(self) -> models.Model:
        return {
            Level.ORGANIZATION: self.organization,
            Level.TEAM: self.team,
            Level.USER: self.user,
            Level.KEY: self.key,
        }[Level(self.level)]


def _one_target(prefix: str) -> list[models.CheckConstraint]:
    only = {
        Level.ORGANIZATION: dict(team__isnull=True, user__isnull=True, key__isnull=True),
        Level.TEAM: dict(team__isnull=False, user__isnull=True, key__isnull=True),
        Level.USER: dict(team__isnull=True, user__isnull=False, key__isnull=True),
        Level.KEY: dict(team__isnull=True, user__isnull=True, key__isnull=False),
    }
    condition = models.Q()
    for level, fields in only.items():
        condition |= models.Q(level=level, **fields)
    return [models.CheckConstraint(condition=condition, name=f"{prefix}_targets_its_level")]


def default_alert_thresholds() -> list[int]:
    return [75, 90, 100]


class Budget(ScopedPolicy):
    """A hard USD budget per period. Calendar periods are UTC-aligned; rolling ones
    start at ``anchor`` and repeat every day, 7, 30 or 365 days."""

    amount_usd = models.DecimalField(max_digits=14, decimal_places=4)
    period = models.CharField(max_length=10, choices=Period.choices)
    rolling = models.BooleanField(default=False)
    anchor = models.DateTimeField(default=timezone.now)
    # Percentages of the amount at which the organization's alert channels are
    # warned, each once per period.
    alert_thresholds = models.JSONField(default=default_alert_thresholds, blank=True)

    class Meta:
        constraints = [
            *_one_target("budget"),
            models.UniqueConstraint(
                fields=["organization", "period"], condition=models.Q(level="organization"), name="budget_one_per_org_period"
            ),
            models.UniqueConstraint(fields=["team", "period"], condition=models.Q(level="team"), name="budget_one_per_team_period"),
            models.UniqueConstraint(
                fields=["organization", "user", "period"], condition=models.Q(level="user"), name="budget_one_per_user_period"
            ),
            models.UniqueConstraint(fields=["key", "period"], condition=models.Q(level="key"), name="budget_one_per_key_period"),
            models.CheckConstraint(condition=models.Q(amount_usd__gte=0), name="budget_not_negative"),
        ]

    def __str__(self) -> str:
        return f"{self.level} {self.target} {self.period} ${self.amount_usd}"


class RateLimit(ScopedPolicy):
    """At most ``limit`` requests (or tokens) per sliding window, optionally only
    for models matching ``model_pattern`` or traffic to one provider."""

    metric = models.CharField(max_length=10, choices=Metric.choices)
    limit = models.PositiveBigIntegerField()
    window_seconds = models.PositiveIntegerField()
    model_pattern = models.CharField(max_length=200, blank=True, default="")
    provider = models.ForeignKey(Provider, null=True, blank=True, on_delete=models.CASCADE, related_name="+")

    class Meta:
        constraints = [
            *_one_target("ratelimit"),
            models.CheckConstraint(condition=models.Q(window_seconds__gte=1), name="ratelimit_window_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.level} {self.target} {self.limit} {self.metric}/{self.window_seconds}s"


class BudgetSpend(models.Model):
    """Spend of a budget's period as last read from the counter store (persisted
    periodically), one of the two sources a lost counter is rebuilt from."""

    budget = models.ForeignKey(Budget, on_delete=models.CASCADE, related_name="spends")
    period_start = models.DateTimeField()
    spent_usd = models.DecimalField(max_digits=18, decimal_places=10)
    persisted_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["budget", "period_start"], name="budget_spend_per_period")]


class AlertChannelKind(models.TextChoices):
    WEBHOOK = "webhook", "Webhook (HMAC-signed JSON)"
    SLACK = "slack", "Slack-compatible incoming webhook"
    EMAIL = "email", "Email"


class AlertChannel(models.Model):
    """Where an organization's budget warnings go."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="alert_channels")
    name = models.CharField(max_length=100)
    kind = models.CharField(max_length=10, choices=AlertChannelKind.choices)
    # A webhook's or Slack's URL is itself a credential: sealed like one.
    url_sealed = models.TextField(blank=True, default="")
    email = models.EmailField(blank=True, default="")
    # The key a webhook's X-Tollgate-Signature is computed with.
    secret_sealed = models.TextField(blank=True, default="")
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["organization", "name"], name="alert_channel_name_unique_in_org")
        ]

    def __str__(self) -> str:
        return f"{self.organization.slug}/{self.name} ({self.kind})"


class BudgetAlert(models.Model):
    """A budget's spend crossed one of its thresholds in one period: at most one
    row per (budget, period, threshold), which is what makes a warning fire once."""

    budget = models.ForeignKey(Budget, on_delete=models.CASCADE, related_name="alerts")
    period_start = models.DateTimeField()
    threshold = models.PositiveSmallIntegerField()
    spent_usd = models.DecimalField(max_digits=18, decimal_places=10)
    amount_usd = models.DecimalField(max_digits=14, decimal_places=4)
    resets_at = models.DateTimeField()
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["budget", "period_start", "threshold"], name="budget_alert_once_per_period")
        ]

    def __str__(self) -> str:
        return f"{self.budget} {self.threshold}% from {self.period_start:%Y-%m-%d}"


class DeliveryStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    DELIVERED = "delivered", "Delivered"
    FAILED = "failed", "Failed (gave up)"


class AlertDelivery(models.Model):
    """One warning to one channel, with every attempt's outcome; retried with backoff until it lands."""

    alert = models.ForeignKey(BudgetAlert, on_delete=models.CASCADE, related_name="deliveries")
    channel = models.ForeignKey(AlertChannel, on_delete=models.CASCADE, related_name="deliveries")
    status = models.CharField(max_length=10, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    last_error = models.TextField(blank=True, default="")
    response_status = models.PositiveSmallIntegerField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        constraints = [models.UniqueConstraint(fields=["alert", "channel"], name="alert_delivery_once_per_channel")]
        indexes = [models.Index(fields=["status", "next_attempt_at"], name="alert_delivery_due")]

    def __str__(self) -> str:
        return f"{self.alert} → {self.channel} ({self.status})"


class Route(models.Model):
    """Where requests for models matching ``model_pattern`` go.

    A route belongs to a key, a team, an organization, or (none of them) the
    whole gateway; the most specific level wins, and within a level the
    longest pattern. Its targets are tried tier by tier: weighted among the
    healthy targets of tier 0, then tier 1 as the fallback, and so on.
    """

    organization = models.ForeignKey(Organization, null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    team = models.ForeignKey(Team, null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    key = models.ForeignKey(VirtualKey, null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    model_pattern = models.CharField(max_length=200)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        scope = self.key or self.team or self.organization or "gateway"
        return f"{scope}: {self.model_pattern}"


class RouteTarget(models.Model):
    route = models.ForeignKey(Route, on_delete=models.CASCADE, related_name="targets")
    provider = models.ForeignKey(Provider, on_delete=models.CASCADE, related_name="+")
    # The id the provider knows; blank keeps the requested model.
    model = models.CharField(max_length=200, blank=True, default="")
    weight = models.PositiveIntegerField(default=1)
    tier = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["tier", "id"]

    def __str__(self) -> str:
        return f"{self.provider}/{self.model or '*'} (tier {self.tier}, weight {self.weight})"


# --- MCP gateway ----------------------------------------------------------------


class McpTransport(models.TextChoices):
    HTTP = "http", "Streamable HTTP"
    STDIO = "stdio", "stdio (run by Tollgate)"


class McpAuth(models.TextChoices):
    NONE = "none", "None"
    HEADERS = "headers", "Static headers"
    OAUTH_CLIENT_CREDENTIALS = "oauth_client_credentials", "OAuth client credentials"


class McpServer(models.Model):
    """An upstream MCP server whose tools Tollgate serves as ``<name>__<tool>``.

    Secrets (static headers, the OAuth client secret, a stdio server's
    environment) are one sealed JSON object; the rest is plain configuration.
    """

    # The tool prefix: lower-case letters, digits, "-" and single "_" (never "__",
    # which separates server from tool).
    name = models.CharField(max_length=40, unique=True)
    description = models.CharField(max_length=300, blank=True, default="")
    transport = models.CharField(max_length=10, choices=McpTransport.choices)
    url = models.URLField(max_length=500, blank=True, default="")
    auth = models.CharField(max_length=30, choices=McpAuth.choices, default=McpAuth.NONE)
    # OAuth client credentials: where tokens come from, for whom, with what scope.
    token_url = models.URLField(max_length=500, blank=True, default="")
    client_id = models.CharField(max_length=200, blank=True, default="")
    scope = models.CharField(max_length=500, blank=True, default="")
    # stdio: the command line (a list, never a shell string) and its working directory.
    command = models.JSONField(default=list, blank=True)
    cwd = models.CharField(max_length=500, blank=True, default="")
    # Fernet token of {"headers": {...}, "client_secret": "...", "env": {...}}.
    secrets_sealed = models.TextField(blank=True, default="")
    timeout_seconds = models.PositiveIntegerField(default=60)
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class McpToolPolicy(ScopedPolicy):
    """Which MCP tools one level of the chain may use.

    Patterns are globs over ``server__tool`` names; a pattern without ``__``
    names a whole server. A tool is usable when, at every level that has a
    policy, it matches ``allowed`` (empty: every tool) and no ``denied`` pattern.
    """

    allowed = models.JSONField(default=list, blank=True)
    denied = models.JSONField(default=list, blank=True)

    class Meta:
        constraints = [
            *_one_target("mcppolicy"),
            models.UniqueConstraint(
                fields=["organization"], condition=models.Q(level="organization"), name="mcppolicy_one_per_org"
            ),
            models.UniqueConstraint(fields=["team"], condition=models.Q(level="team"), name="mcppolicy_one_per_team"),
            models.UniqueConstraint(
                fields=["organization", "user"], condition=models.Q(level="user"), name="mcppolicy_one_per_user"
            ),
            models.UniqueConstraint(fields=["key"], condition=models.Q(level="key"), name="mcppolicy_one_per_key"),
        ]

    def __str__(self) -> str:
        return f"MCP tools of {self.level} {self.target}"


class McpBundle(models.Model):
    """A named set of tools served at ``/mcp/<name>``, narrower than the key's allowlist."""

    name = models.SlugField(max_length=60, unique=True)
    description = models.CharField(max_length=300, blank=True, default="")
    tools = models.JSONField(default=list)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class ApiToken(models.Model):
    """A credential for automation against the REST API.

    Like a virtual key, only the visible ``prefix`` and a peppered HMAC
    ``digest`` are stored; the secret is shown once, when it is issued. Every
    token expires; revoking one stops it at once.
    """

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=200, blank=True, default="")
    prefix = models.CharField(max_length=32, unique=True)
    digest = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    revoked_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.prefix}… ({self.user})"

    @property
    def is_usable(self) -> bool:
        return self.revoked_at is None and self.expires_at > timezone.now()
