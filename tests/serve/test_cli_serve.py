"""`recai serve` turns its options into ServeSettings and fails clearly on bad ones (no server starts)."""

from __future__ import annotations

from typing import Any

import pytest
from typer.testing import CliRunner

from recai.cli import app


@pytest.fixture
def started(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    import recai.serve.logs as logs
    import recai.serve.server as server

    calls: dict[str, Any] = {}
    monkeypatch.setattr(logs, "configure_logging", lambda level: None)  # leave pytest's logging alone
    monkeypatch.setattr(
        server, "build_agent", lambda data, llm, **kw: calls.update(data=data, llm=llm) or _Agent()
    )
    monkeypatch.setattr(server, "run", lambda agent, settings, **kw: calls.update(settings=settings, **kw))
    return calls


class _Agent:
    class dataset:  # noqa: N801 - mimics the attribute the CLI prints
        name = "demo"


def test_options_become_settings(started: dict[str, Any]) -> None:
    result = CliRunner().invoke(
        app,
        ["serve", "--llm", "scripted:stand-in", "--port", "9001", "--token", "t0k", "--cors", "https://a.example",
         "--cors", "https://b.example", "--workers", "2", "--rate-limit", "0", "--max-sessions", "7"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    settings = started["settings"]
    assert (
        started["llm"] == "scripted:stand-in" and started["port"] == 9001 and started["host"] == "127.0.0.1"
    )
    assert settings.token == "t0k" and settings.cors_origins == ["https://a.example", "https://b.example"]
    assert (settings.workers, settings.rate_per_minute, settings.max_sessions) == (2, 0, 7)


def test_bad_options_fail_with_a_clear_message(started: dict[str, Any]) -> None:
    result = CliRunner().invoke(app, ["serve", "--workers", "0"])
    assert result.exit_code == 1 and "workers" in result.output and "settings" not in started


def test_forwarded_headers_are_believed_only_from_the_named_proxies(started: dict[str, Any]) -> None:
    assert CliRunner().invoke(app, ["serve"]).exit_code == 0
    assert started["settings"].forwarded_allow_ips == []  # the default: believe no X-Forwarded-For
    result = CliRunner().invoke(app, ["serve", "--forwarded-allow-ips", "10.0.0.1, 10.1.0.0/16"])
    assert result.exit_code == 0, result.output
    assert started["settings"].forwarded_allow_ips == ["10.0.0.1", "10.1.0.0/16"]
