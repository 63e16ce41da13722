"""Settings: ``config/bot.yaml`` for what admins tune, the environment for secrets and deployment.

Each section of bot.yaml is one dataclass below; the YAML loader validates the
file against these field names and types, so a field added here is at once a
documented, checked setting.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class LlmSettings:
    model: str = "gpt-4o-mini"
    temperature: float = 0.3
    max_tokens: int = 600
    context_tokens: int = 0  # the model's context window; 0 = ask the server
    connect_timeout_seconds: float = 5.0
    read_timeout_seconds: float = 60.0
    max_concurrent_requests: int = 64  # calls in flight at once across all chats
    retry_budget_seconds: float = 20.0  # total time spent retrying one answer
    circuit_failures: int = 5  # consecutive failures that open the circuit breaker
    circuit_cooldown_seconds: float = 30.0
    streaming: bool = True
    use_tools: bool = True  # offer the escalate() tool; false = the model emits a marker instead
    escalation_marker: str = "[[HANDOFF]]"
    vision: bool = False  # the model can see: photos go to it as image content parts
    vision_max_pixels: int = 1_600_000  # the largest photo size (width x height) sent to it
    transcription_model: str = ""  # voice notes via /audio/transcriptions; "" = not transcribed
    transcription_base_url: str = ""  # a separate speech server; "" = the LLM's base URL
    transcription_language: str = ""  # ISO-639-1 hint such as "de"; "" = detected


@dataclass(frozen=True)
class RetrievalSettings:
    top_k: int = 3  # FAQ snippets put in the prompt
    confidence_threshold: float = 0.83  # FAQ-only mode answers directly at or above this
    semantic: bool = True  # also match by meaning, fusing embeddings with the word scores
    # "bundled": the multilingual model installed with the bot (bot.knowledge.sentence_model);
    # "provider": the LLM provider's /embeddings endpoint; "local": WordLlama, English only,
    # from the optional extra (bot.knowledge.local_embeddings).
    embedding_source: str = "bundled"
    embedding_model: str = "text-embedding-3-small"  # used with the provider
    semantic_weight: float = 0.7
    # Start-up waits this long for the FAQ's vectors; past it the bot answers, matching by
    # words until the rest are embedded in the background (a first start with a large FAQ).
    startup_wait_seconds: float = 60.0
    # FAQ-only mode, no confident match: offer up to ``choices`` entries to pick from, each
    # at least ``choice_threshold`` confident, with "talk to a person" beside them; 0 hands
    # the customer to a person at once.
    choices: int = 3
    choice_threshold: float = 0.3


@dataclass(frozen=True)
class ConversationSettings:
    history_messages: int = 20  # earlier turns given to the model, at most
    history_chars: int = 8000  # and at most this many characters of them
    max_input_chars: int = 4000  # longer customer messages are cut before the model sees them
    rate_limit_per_minute: int = 10
    feedback_buttons: bool = True
    answer_in_groups: bool = False  # answer customers in group chats when addressed


@dataclass(frozen=True)
class EscalationRule:
    phrases: tuple[str, ...]
    action: str = "escalate"  # "escalate" at once, or "offer" a person


@dataclass(frozen=True)
class EscalationSettings:
    handoff_phrases: tuple[str, ...] = ()  # added to the built-in phrases in eight languages
    rules: tuple[EscalationRule, ...] = ()
    not_helpful_limit: int = 2
    repeat_limit: int = 3
    copy_staff_names: bool = False  # show staff names to customers


@dataclass(frozen=True)
class TelegramSettings:
    staff_chat_id: int | None = None
    admin_user_ids: tuple[int, ...] = ()
    shutdown_grace_seconds: float = 10.0
    reload_poll_seconds: float = 3.0
    max_retries: int = 5
    # "adaptive": keep the bot-wide rate under overall_messages_per_second only after
    # Telegram answers a 429; "always": from the start; "off": never.
    overall_limit: str = "adaptive"
    overall_messages_per_second: int = 29


@dataclass(frozen=True)
class OfficeHoursSettings:
    """When the support team works: the same hours on each listed day, in one time zone."""

    timezone: str = "Europe/Berlin"  # an IANA name, e.g. "Europe/Berlin" or "UTC"
    days: tuple[str, ...] = ("mon", "tue", "wed", "thu", "fri")
    start: str = "09:00"  # 24-hour clock, local time
    end: str = "18:00"  # later than start; "24:00" = until midnight


@dataclass(frozen=True)
class SupportSettings:
    """How the staff desk is run: reminders for tickets that wait, and office hours."""

    sla_minutes: int = 30  # a ticket without a staff reply for this long gets a reminder; 0 = off
    sla_repeat_minutes: int = 60  # remind again at most this often while it still waits
    sla_check_seconds: float = 60.0  # how often waiting tickets are looked at
    remind_outside_office_hours: bool = False
    # A ticket nobody has taken this long tells its customer once how long it may take; 0 = off.
    unclaimed_notice_minutes: int = 15
    # A ticket whose last word was the team's closes after this long without the customer; 0 = off.
    auto_close_hours: int = 48
    office_hours: OfficeHoursSettings = field(default_factory=OfficeHoursSettings)


@dataclass(frozen=True)
class StorageSettings:
    database_path: str = "data/bot.sqlite3"
    retention_days: int = 0  # 0 keeps message text forever


@dataclass(frozen=True)
class MediaSettings:
    max_download_mb: float = 20.0  # Telegram's cloud Bot API serves files up to 20 MB
    download_timeout_seconds: float = 30.0
    max_voice_seconds: int = 120  # longer voice notes are not transcribed
    transcription_timeout_seconds: float = 60.0


@dataclass(frozen=True)
class LoggingSettings:
    level: str = "INFO"
    format: str = "text"  # "text" or "json"
    log_message_text: bool = False


@dataclass(frozen=True)
class Settings:
    """Everything the bot needs to run; built by ``bot.settings_loader.load_settings``."""

    llm: LlmSettings = field(default_factory=LlmSettings)
    retrieval: RetrievalSettings = field(default_factory=RetrievalSettings)
    conversation: ConversationSettings = field(default_factory=ConversationSettings)
    escalation: EscalationSettings = field(default_factory=EscalationSettings)
    telegram: TelegramSettings = field(default_factory=TelegramSettings)
    support: SupportSettings = field(default_factory=SupportSettings)
    storage: StorageSettings = field(default_factory=StorageSettings)
    media: MediaSettings = field(default_factory=MediaSettings)
    logging: LoggingSettings = field(default_factory=LoggingSettings)
    env: Environment = field(default_factory=lambda: Environment())


@dataclass(frozen=True)
class Environment:
    """Values only the environment may set. Secrets are kept out of ``repr``."""

    telegram_bot_token: str | None = field(default=None, repr=False)
    telegram_api_base_url: str = "https://api.telegram.org/bot"
    llm_base_url: str | None = None
    llm_api_key: str | None = field(default=None, repr=False)
    llm_model: str | None = None
    llm_transcription_model: str | None = None
    database_path: str | None = None
    # FAQ vectors in a file of their own, shared by several databases (a terminal
    # rehearsal's throw-away one, staging and production); unset: in the database.
    vector_cache_path: str | None = None
    config_dir: str = "config"
    faq_dir: str = "faq"
    staff_chat_id: int | None = None
    admin_user_ids: tuple[int, ...] | None = None
    webhook_url: str | None = None
    webhook_secret: str | None = field(default=None, repr=False)
    console_url: str | None = None  # public base of web console links; see bot.console_web
    http_host: str = "0.0.0.0"
    http_port: int = 8080

    @property
    def llm_configured(self) -> bool:
        return bool(self.llm_api_key or self.llm_base_url)

    @property
    def effective_llm_base_url(self) -> str:
        return (self.llm_base_url or "https://api.openai.com/v1").rstrip("/")
