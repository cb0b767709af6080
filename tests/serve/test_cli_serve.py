"""`recai serve` turns its options into ServeSettings and fails clearly on bad ones (no server starts)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from recai.cli import app


@pytest.fixture
def started(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> dict[str, Any]:
    import recai.serve.logs as logs
    import recai.serve.server as server

    calls: dict[str, Any] = {}
    monkeypatch.setattr(logs, "configure_logging", lambda level: None)  # leave pytest's logging alone
    monkeypatch.setattr(
        server, "build_agent", lambda data, llm, **kw: calls.update(data=data, llm=llm) or _Agent(tmp_path)
    )
    monkeypatch.setattr(server, "run", lambda agent, settings, **kw: calls.update(settings=settings, **kw))
    monkeypatch.setattr(server, "run_workers", lambda spec, **kw: calls.update(spec=spec, **kw))
    return calls


class _Agent:
    class dataset:  # noqa: N801 - mimics the attribute the CLI prints
        name = "demo"

    def __init__(self, cache_dir: Path) -> None:
        self.resources = type("Resources", (), {"cache_dir": cache_dir})()


def test_options_become_settings(started: dict[str, Any]) -> None:
    result = CliRunner().invoke(
        app,
        ["serve", "--llm", "scripted:stand-in", "--port", "9001", "--token", "t0k", "--cors", "https://a.example",
         "--cors", "https://b.example", "--turn-threads", "2", "--rate-limit", "0", "--max-sessions", "7"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    settings = started["settings"]
    assert (
        started["llm"] == "scripted:stand-in" and started["port"] == 9001 and started["host"] == "127.0.0.1"
    )
    assert settings.token == "t0k" and settings.cors_origins == ["https://a.example", "https://b.example"]
    assert (settings.turn_threads, settings.rate_per_minute, settings.max_sessions) == (2, 0, 7)


def test_the_default_store_is_a_sqlite_file_beside_the_datasets_caches(
    started: dict[str, Any], tmp_path: Path
) -> None:
    assert CliRunner().invoke(app, ["serve"]).exit_code == 0
    assert started["settings"].store == f"sqlite:///{tmp_path.resolve() / 'sessions.sqlite3'}"


def test_several_workers_run_from_a_spec_that_rebuilds_the_same_agent(
    started: dict[str, Any], tmp_path: Path
) -> None:
    store = f"sqlite:///{tmp_path / 's.db'}"
    result = CliRunner().invoke(
        app, ["serve", "--llm", "scripted:stand-in", "--workers", "3", "--store", store, "--encoder", "st:x"]
    )
    assert result.exit_code == 0, result.output
    spec = started["spec"]
    assert started["workers"] == 3 and "settings" not in started  # not run in this process
    assert (spec.data, spec.llm, spec.settings["store"]) == ("demo", "scripted:stand-in", store)
    assert spec.agent_kwargs()["settings"].encoder == "st:x"


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["--workers", "0"], "--workers"),
        (["--turn-threads", "0"], "turn_threads"),
        (["--workers", "2", "--store", "memory"], "--store memory"),
        (["--store", "postgres://x"], "--store"),
        (["--store", "sqlite://relative.db"], "sqlite:///PATH"),
        (["--store", "redis://127.0.0.1:1/0"], "--store redis://127.0.0.1:1/0"),
    ],
)
def test_bad_options_fail_with_a_clear_message(started: dict[str, Any], args: list[str], named: str) -> None:
    result = CliRunner().invoke(app, ["serve", *args])
    assert result.exit_code == 1 and named in result.output, result.output
    assert "settings" not in started and "spec" not in started


def test_forwarded_headers_are_believed_only_from_the_named_proxies(started: dict[str, Any]) -> None:
    assert CliRunner().invoke(app, ["serve"]).exit_code == 0
    assert started["settings"].forwarded_allow_ips == []  # the default: believe no X-Forwarded-For
    result = CliRunner().invoke(app, ["serve", "--forwarded-allow-ips", "10.0.0.1, 10.1.0.0/16"])
    assert result.exit_code == 0, result.output
    assert started["settings"].forwarded_allow_ips == ["10.0.0.1", "10.1.0.0/16"]
