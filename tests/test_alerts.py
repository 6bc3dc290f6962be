"""Alerts to ALERT_WEBHOOK_URL, posted to a real local receiver (an http.server in a thread).

The receiver records every POST and answers from a script (a status per request, or hang). The
URL carries a token in its path, as Slack's do: it must never reach a log line.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from allocator.shell.alerts import (
    alert_abandoned_run,
    alert_failed_checks,
    alert_failed_run,
    mask_webhook,
    send_alert,
)
from allocator.shell.logs import SecretMaskingFilter
from allocator.shell.settings import get_settings

TOKEN = "T0SECRET/B0SECRET/xoxbSECRETTOKEN42"
HANG = "hang"


class WebhookReceiver:
    """A webhook on 127.0.0.1: ``script`` lists the answer to each request (an HTTP status or
    ``HANG``); once it runs out, every request gets 200. ``posts`` holds (path, headers, JSON)."""

    def __init__(self, script=()):
        self.script = list(script)
        self.posts: list[tuple[str, dict, dict]] = []
        self.release = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - the http.server API
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                receiver.posts.append((self.path, dict(self.headers), json.loads(body)))
                answer = receiver.script.pop(0) if receiver.script else 200
                if answer == HANG:
                    receiver.release.wait(30)
                    return
                self.send_response(answer)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args):  # keep the test output quiet
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/services/{TOKEN}"

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


def settings_for(url: str | None, **extra):
    env = {"DATABASE_URL": "sqlite:///unused.sqlite3", **extra}
    if url:
        env["ALERT_WEBHOOK_URL"] = url
    return get_settings(env, dotenv=False)


def dead_url() -> str:
    """A URL on a local port nothing listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/services/{TOKEN}"


def test_an_alert_arrives_as_slack_json():
    with WebhookReceiver() as receiver:
        assert send_alert(settings_for(receiver.url), "Capital Allocator: fetch failed", "*boom*")
    ((path, headers, body),) = receiver.posts
    assert path == f"/services/{TOKEN}"
    assert headers["Content-Type"] == "application/json"
    assert body["text"] == "*Capital Allocator: fetch failed*\n*boom*"
    header, section = body["blocks"]
    assert header == {
        "type": "header",
        "text": {"type": "plain_text", "text": "Capital Allocator: fetch failed"},
    }
    assert section["text"] == {"type": "mrkdwn", "text": "*boom*"}


def test_blocks_are_optional_and_long_text_is_cut_for_slack():
    with WebhookReceiver() as receiver:
        send_alert(settings_for(receiver.url), "t", "d", blocks=False)
        send_alert(settings_for(receiver.url), "x" * 200, "y" * 4000)
    assert set(receiver.posts[0][2]) == {"text"}
    header, section = receiver.posts[1][2]["blocks"]
    assert len(header["text"]["text"]) == 150 and len(section["text"]["text"]) == 3000


def test_a_500_then_200_is_retried_and_delivered(caplog):
    caplog.set_level(logging.INFO)
    with WebhookReceiver([500, 200]) as receiver:
        assert send_alert(settings_for(receiver.url), "title", "detail", backoff=0)
    assert len(receiver.posts) == 2
    assert receiver.posts[0][2] == receiver.posts[1][2]
    assert "delivered to http://127.0.0.1/***" in caplog.text


def test_a_4xx_is_not_retried():
    with WebhookReceiver([404]) as receiver:
        assert not send_alert(settings_for(receiver.url), "title", "detail", backoff=0)
    assert len(receiver.posts) == 1


def test_three_attempts_then_a_logged_warning(caplog):
    caplog.set_level(logging.DEBUG)
    with WebhookReceiver([500, 502, 503, 200]) as receiver:
        assert not send_alert(settings_for(receiver.url), "title", "detail", backoff=0)
    assert len(receiver.posts) == 3
    (warning,) = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert "after 3 attempt(s): HTTP 503" in warning.getMessage()
    assert TOKEN not in caplog.text and "/services/" not in caplog.text


def test_a_dead_receiver_does_not_fail_the_caller_and_the_url_is_never_logged(caplog):
    caplog.set_level(logging.DEBUG)
    url = dead_url()
    assert alert_failed_run(settings_for(url), "fetch", dt.date(2025, 3, 4), "boom") is False
    assert "not delivered to http://127.0.0.1/***" in caplog.text
    assert "cannot connect" in caplog.text
    assert TOKEN not in caplog.text and url not in caplog.text


def test_a_hanging_receiver_times_out_and_does_not_fail_the_caller(caplog):
    caplog.set_level(logging.DEBUG)
    with WebhookReceiver([HANG, HANG]) as receiver:
        delivered = send_alert(
            settings_for(receiver.url), "title", "detail", timeout=0.3, attempts=2, backoff=0
        )
    assert delivered is False
    assert len(receiver.posts) == 2
    assert "no answer within 0.3 s" in caplog.text
    assert TOKEN not in caplog.text


def test_no_webhook_no_post_and_a_malformed_one_is_refused_quietly(caplog):
    caplog.set_level(logging.DEBUG)
    assert send_alert(settings_for(None), "title", "detail") is False
    assert send_alert(settings_for("hooks.example/" + TOKEN), "title", "detail") is False
    assert "ALERT_WEBHOOK_URL is not an http(s) URL" in caplog.text
    assert TOKEN not in caplog.text


def test_secrets_are_redacted_from_the_alert_text():
    with WebhookReceiver() as receiver:
        settings = settings_for(receiver.url, ALPHAVANTAGE_API_KEY="AVKEY-SECRET-123")
        send_alert(settings, "title", "failed calling ?apikey=AVKEY-SECRET-123 at " + receiver.url)
    text = json.dumps(receiver.posts[0][2])
    assert "AVKEY-SECRET-123" not in text and TOKEN not in text and "***" in text


def test_failed_run_abandoned_run_and_failed_checks_say_what_and_where():
    day = dt.date(2025, 3, 4)
    started = dt.datetime(2025, 3, 4, 14, 30, tzinfo=dt.UTC)
    with WebhookReceiver() as receiver:
        settings = settings_for(receiver.url)
        assert alert_failed_run(settings, "execute", day, "ExecutionError: x", "/r/execute.html")
        assert alert_abandoned_run(settings, "fetch", day, 17, started)
        assert alert_failed_checks(settings, day, [("prices", "no bar of 2025-03-04 for QQQ")])
    failed, abandoned, checks = (body["text"] for _, _, body in receiver.posts)
    assert failed.startswith("*Capital Allocator: execute failed*")
    assert "ExecutionError: x" in failed and "/r/execute.html" in failed
    assert "allocator run execute --date 2025-03-04" in failed
    assert "Run #17 of `fetch` for 2025-03-04 (started 2025-03-04 14:30 UTC)" in abandoned
    assert "health check failed for 2025-03-04" in checks
    assert "*prices*: no bar of 2025-03-04 for QQQ" in checks


def test_the_webhook_is_a_secret_of_the_settings():
    url = "https://hooks.slack.com/services/" + TOKEN
    settings = settings_for(url)
    assert url in settings.secret_values()
    assert TOKEN not in repr(settings)
    assert mask_webhook(url) == "https://hooks.slack.com/***"
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "posting to %s", (url,), None)
    SecretMaskingFilter(settings.secret_values()).filter(record)
    assert record.getMessage() == "posting to ***"


@pytest.mark.parametrize("value", ["", "   "])
def test_an_empty_webhook_means_no_alerts(value):
    assert settings_for(None, ALERT_WEBHOOK_URL=value).alert_webhook_url is None
