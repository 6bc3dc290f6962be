"""Alerts to a chat webhook (``ALERT_WEBHOOK_URL``): a failed job, an abandoned run, a failed check.

The webhook gets Slack-compatible JSON, ``{"text": ..., "blocks": [...]}``: Slack incoming
webhooks read both, Mattermost and most other receivers read ``text``. Sending uses the standard
library only, with a timeout per attempt and a few attempts with growing pauses. An alert never
raises and never fails the job that sends it: a delivery that does not succeed is logged (as a
warning) and :func:`send_alert` returns False. The webhook URL carries its token in its path, so
no log line ever shows more of it than the scheme and host (:func:`mask_webhook`).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import socket
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from urllib.parse import urlsplit

from allocator.shell.settings import Settings

log = logging.getLogger(__name__)

#: Seconds one attempt may take, attempts in all, and the pause before the n-th retry (from 0)
#: of ``BACKOFF * 2**n`` seconds.
TIMEOUT, ATTEMPTS, BACKOFF = 5.0, 3, 1.0
#: Slack refuses a header longer than 150 characters and a section longer than 3,000.
HEADER_LIMIT, SECTION_LIMIT = 150, 3000
SERVICE = "Capital Allocator"


def mask_webhook(url: str) -> str:
    """``url`` reduced to its scheme and host (``https://hooks.slack.com/***``)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "***"
    host = parts.hostname or ""
    return f"{parts.scheme}://{host}/***" if parts.scheme and host else "***"


def _redact(text: str, settings: Settings) -> str:
    for secret in settings.secret_values():
        text = text.replace(secret, "***")
    return text


def alert_payload(title: str, detail: str, *, blocks: bool = True) -> dict:
    """The JSON body: ``text`` (every receiver) and, with ``blocks``, a Slack header + section."""
    payload: dict = {"text": f"*{title}*\n{detail}"}
    if blocks:
        header = title if len(title) <= HEADER_LIMIT else title[: HEADER_LIMIT - 1] + "…"
        section = detail if len(detail) <= SECTION_LIMIT else detail[: SECTION_LIMIT - 1] + "…"
        payload["blocks"] = [
            {"type": "header", "text": {"type": "plain_text", "text": header}},
            {"type": "section", "text": {"type": "mrkdwn", "text": section or "-"}},
        ]
    return payload


def _post(url: str, body: bytes, timeout: float) -> str | None:
    """POST ``body``; None when the receiver answered 2xx, else why not (no URL in it)."""
    request = urllib.request.Request(
        url,
        data=body,
        method="POST",
        headers={"Content-Type": "application/json", "User-Agent": "capital-allocator-alerts"},
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            response.read()
            return None
    except urllib.error.HTTPError as exc:
        return f"HTTP {exc.code}"
    except urllib.error.URLError as exc:
        return f"cannot connect ({exc.reason})"
    except TimeoutError:
        return f"no answer within {timeout:g} s"
    except (OSError, ValueError) as exc:
        return f"{type(exc).__name__}: {exc}"


def _retryable(reason: str) -> bool:
    # A 4xx other than 408/429 means the request itself is wrong: sending it again cannot help.
    if reason.startswith("HTTP 4"):
        return reason in ("HTTP 408", "HTTP 429")
    return True


def send_alert(
    settings: Settings,
    title: str,
    detail: str,
    *,
    blocks: bool = True,
    timeout: float = TIMEOUT,
    attempts: int = ATTEMPTS,
    backoff: float = BACKOFF,
) -> bool:
    """Post an alert to ``settings.alert_webhook_url``; True when the receiver accepted it.

    Parameters
    ----------
    settings : Settings
        Where to post (``ALERT_WEBHOOK_URL``; unset: nothing is sent) and the secrets to redact
        from the text before it leaves the machine.
    title, detail : str
        One line of headline and the body (Slack ``mrkdwn``).
    blocks : bool
        Add Slack ``blocks`` beside ``text``.
    timeout, attempts, backoff : float, int, float
        Seconds per attempt; attempts in all (5xx, 408, 429 and network errors are retried);
        the pause before the n-th retry (from 0) is ``backoff * 2**n`` seconds.

    Returns
    -------
    bool
        Whether the alert was delivered. It never raises: a failure is logged as a warning with
        the URL masked, and the caller carries on.
    """
    url = settings.alert_webhook_url
    if not url:
        log.debug("no ALERT_WEBHOOK_URL: alert %r not sent", title)
        return False
    where = mask_webhook(url)
    if not url.lower().startswith(("https://", "http://")):
        log.warning(
            "alert %r not sent: ALERT_WEBHOOK_URL is not an http(s) URL; set it to the "
            "webhook's address (https://hooks.slack.com/services/...) or leave it empty",
            title,
        )
        return False
    try:
        payload = alert_payload(_redact(title, settings), _redact(detail, settings), blocks=blocks)
        body = json.dumps(payload).encode("utf-8")
    except Exception as exc:  # noqa: BLE001 - an alert must never fail its caller
        log.warning("alert %r not sent: cannot encode it (%s)", title, type(exc).__name__)
        return False
    reason = "no attempt made"
    for attempt in range(max(1, attempts)):
        if attempt:
            time.sleep(backoff * 2 ** (attempt - 1))
        reason = _post(url, body, timeout)
        if reason is None:
            log.info("alert %r delivered to %s", title, where)
            return True
        if not _retryable(reason):
            break
    log.warning(
        "alert %r not delivered to %s after %d attempt(s): %s; check ALERT_WEBHOOK_URL",
        title,
        where,
        attempt + 1,
        reason.replace(url, where),
    )
    return False


def _host() -> str:
    try:
        return socket.gethostname()
    except OSError:
        return "unknown host"


def _when(trade_date: dt.date | str | None) -> str:
    return f" for {trade_date}" if trade_date else ""


def alert_failed_run(
    settings: Settings,
    job: str,
    trade_date: dt.date | str | None,
    error: str | None,
    report_path: str | None = None,
) -> bool:
    """Alert that ``allocator run JOB`` failed (the runner calls it; never raises)."""
    lines = [f"`allocator run {job}` failed{_when(trade_date)} on {_host()}."]
    lines.append(f"Error: {error or 'no error recorded'}")
    if report_path:
        lines.append(f"Report: {report_path}")
    lines.append(
        f"Re-run: `allocator run {job}" + (f" --date {trade_date}`" if trade_date else "`")
    )
    return send_alert(settings, f"{SERVICE}: {job} failed", "\n".join(lines))


def alert_abandoned_run(
    settings: Settings,
    job: str,
    trade_date: dt.date | str | None,
    run_id: int,
    started_at: dt.datetime | None = None,
    reason: str | None = None,
) -> bool:
    """Alert that run #``run_id`` of ``job`` was found abandoned (its process is gone)."""
    since = f" (started {started_at:%Y-%m-%d %H:%M %Z})" if started_at else ""
    lines = [
        f"Run #{run_id} of `{job}`{_when(trade_date)}{since} was abandoned: its process is gone.",
        reason or "The run did not finish; its date may be only partly processed.",
        f"Check it with `allocator health --date {trade_date}` and re-run the job."
        if trade_date
        else "Check it and re-run the job.",
    ]
    return send_alert(settings, f"{SERVICE}: {job} run abandoned", "\n".join(lines))


def alert_failed_checks(
    settings: Settings, trade_date: dt.date | str, failures: Sequence[tuple[str, str]]
) -> bool:
    """Alert the failed health checks of ``trade_date``: (check name, one-line detail) each."""
    lines = [f"`allocator health --date {trade_date}` on {_host()}: {len(failures)} failed."]
    lines += [f"• *{name}*: {detail}" for name, detail in failures]
    return send_alert(
        settings, f"{SERVICE}: health check failed for {trade_date}", "\n".join(lines)
    )


def alert_rejected_orders(settings: Settings, trade_date: dt.date | str, detail: str) -> bool:
    """Alert that the broker rejected orders of ``trade_date`` (``detail`` names each with the
    broker's reason); the execute job calls it before it fails."""
    lines = [
        f"The broker rejected order(s) of {trade_date} on {_host()}.",
        detail,
        "Each is recorded as cancelled with the broker's reason; the other orders were sent. "
        f"Check the account, then `allocator health --date {trade_date}`.",
    ]
    return send_alert(settings, f"{SERVICE}: orders rejected for {trade_date}", "\n".join(lines))
