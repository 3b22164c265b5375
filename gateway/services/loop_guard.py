"""When a citizen's SMS gets no reply: resends, help texts too often, too many replies a day.

Counted in the database (``mobile_messages``, gateway/store/mobile_messages.py), so several
processes agree:

- **Resends.** An SMSC resends an MO whose deliver_sm_resp it did not get, also after we committed.
  The same text as that number's latest message, again within ``[replies]
  duplicate_window_seconds``, is a resend (deliver_sm carries no id of its own). Any other message
  between makes it a new one: ALTA, BAJA, ALTA within a minute subscribes again.
- **Help texts.** A text not understood gets the help text at most once per
  ``help_interval_minutes`` per number, and never when the number opted out.
- **The daily cap.** No number gets more than ``max_per_day`` replies in 24 hours, whatever it
  sends (the action is still done).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import Connection

from config.settings import RepliesSettings
from gateway.domain.keywords import Intent
from gateway.store import mobile_messages

DUPLICATE = "duplicate"  # the outcome of a resend
OPTED_OUT, HELP_RECENTLY_SENT, CAPPED = "opted_out", "help_recently_sent", "capped"


class LoopGuard:
    def __init__(self, settings: RepliesSettings):
        self.settings = settings

    def is_resend(self, conn: Connection, msisdn: str, text: str, received_at: datetime) -> bool:
        """The same text as this number's latest message (resends of it aside), again within the
        window."""
        window = self.settings.duplicate_window_seconds
        if window <= 0:
            return False
        since = received_at - timedelta(seconds=window)
        return mobile_messages.latest_text(conn, msisdn, since, received_at, other_than=DUPLICATE) == text

    def suppressed(
        self, conn: Connection, msisdn: str, received_at: datetime, *, opted_out: bool, help_text: bool
    ) -> str | None:
        """Why a reply is not sent, or None. ``help_text``: the reply to a text not understood."""
        if help_text:
            if opted_out:
                return OPTED_OUT
            since = received_at - timedelta(minutes=self.settings.help_interval_minutes)
            if mobile_messages.answered_since(conn, msisdn, since, Intent.UNKNOWN.value):
                return HELP_RECENTLY_SENT
        replies = mobile_messages.replies_since(conn, msisdn, received_at - timedelta(hours=24))
        if replies >= self.settings.max_per_day:
            return CAPPED
        return None
