"""The app's collaborators, built once per worker process from the validated settings."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime

from azure.storage.queue import QueueClient

from .content import WeeklySeed, load_seed
from .reminders import LoggingNotifier, Notifier, open_queue
from .repository import BabyBloomRepository
from .settings import AppConfig, load_config
from .tokens import TokenVerifier


def utc_today() -> date:
    # One calendar for everyone: "today" for reminders and dating is the UTC day (docs/babybloom.md says so).
    return datetime.now(UTC).date()


@dataclass(frozen=True, kw_only=True)
class Services:
    repository: BabyBloomRepository
    reminder_queue: QueueClient
    notifier: Notifier
    seed: WeeklySeed
    today: Callable[[], date]
    verifier: TokenVerifier
    platform_authentication: bool

    @classmethod
    def from_config(cls, config: AppConfig, *, today: Callable[[], date] = utc_today,
                    notifier: Notifier | None = None) -> Services:
        return cls(
            repository=BabyBloomRepository.connect(config.cosmos),
            reminder_queue=open_queue(config.reminders),
            notifier=notifier or LoggingNotifier(),
            seed=load_seed(),
            today=today,
            verifier=TokenVerifier(issuer=config.authentication.issuer,
                                   audiences=config.authentication.audiences),
            platform_authentication=config.authentication.platform_authentication,
        )


_current: Services | None = None


def current() -> Services:
    """The process-wide services; the first call reads and validates the settings (ConfigError if wrong)."""
    global _current
    if _current is None:
        _current = Services.from_config(load_config(os.environ))
    return _current


def install(services: Services | None) -> None:
    """Replace the process-wide services (tests pin the clock this way); None reads the settings again."""
    global _current
    _current = services
