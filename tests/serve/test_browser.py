"""The page in a real headless Chromium (Debian's ``chromium``, driven by Playwright) against a real
uvicorn server with the stand-in model: keyboard only, streamed text, item cards, a like, the trace
panel, reset, model text shown as text, and a phone-sized screen. Saves screenshots under
benchmarks/results/."""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from recai.agent import Agent, AgentSettings
from recai.agent.memory import ProfileStore
from recai.data import load
from recai.llm.base import Message
from recai.llm.scripted import ScriptedChatModel
from recai.serve import ServeSettings, create_app
from recai.serve.stand_in import respond
from recai.testing.fakes import BagOfWordsEncoder

CHROMIUM = os.environ.get("RECAI_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
#: Screenshots go to a temporary folder, so a test run never changes tracked files; to refresh the ones
#: the docs show, run with RECAI_SCREENSHOTS=benchmarks/results.
SCREENSHOTS = os.environ.get("RECAI_SCREENSHOTS")


def screenshot_folder(tmp_path: Path) -> Path:
    folder = Path(SCREENSHOTS) if SCREENSHOTS else tmp_path
    folder.mkdir(parents=True, exist_ok=True)
    return folder


EVIL = '<img src=x onerror="window.__pwned=1"> is what the model said.'

pytestmark = [
    pytest.mark.network,
    pytest.mark.skipif(
        CHROMIUM is None,
        reason="no chromium binary: install Debian's chromium (.ci/run does) or set RECAI_CHROMIUM",
    ),
]
sync_api = pytest.importorskip(
    "playwright.sync_api", reason="playwright is not installed (pip install -e '.[dev]')"
)


class Typing(ScriptedChatModel):
    """Writes its answer at a human-visible pace, so the page has something to stream."""

    def _stream(self, *args: Any, **kwargs: Any) -> Iterator[str]:
        for chunk in super()._stream(*args, **kwargs):
            time.sleep(0.02)
            yield chunk


def model() -> ScriptedChatModel:
    """The stand-in, except that it answers a message mentioning 'markup' with HTML (untrusted text)."""

    def reply(messages: list[Message]) -> str:
        last = messages[-1]["content"]
        if "Results:" in last and "markup" in last.rpartition("User's message:")[2]:
            return EVIL
        return respond(messages)

    return Typing(reply, name="scripted:stand-in", chunk_size=6)


@pytest.fixture(scope="module")
def agent(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Agent]:
    home = tmp_path_factory.mktemp("serve-home")
    previous = os.environ.get("RECAI_HOME")
    os.environ["RECAI_HOME"] = str(home)  # the module-scoped agent caches outside the user's home
    try:
        built = Agent(
            load("demo"),
            model(),
            settings=AgentSettings(k=4, sasrec_budget_s=5.0),  # warm_up trains it: keep CI short
            encoder=BagOfWordsEncoder(),
            profile_store=ProfileStore(home / "profiles"),
            progress=False,
        )
        built.warm_up()
        yield built
    finally:
        if previous is None:
            os.environ.pop("RECAI_HOME", None)
        else:
            os.environ["RECAI_HOME"] = previous


@pytest.fixture(scope="module")
def server(agent: Agent) -> Iterator[str]:
    from tests.serve.live import live_server

    with live_server(create_app(agent, ServeSettings())) as (url, _):
        yield url


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with sync_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield launched
        launched.close()


def focus_by_keys(page: Any, selector: str, key: str, limit: int = 40) -> None:
    """Press ``key`` (Tab or Shift+Tab) until the first element matching ``selector`` has the focus."""
    for _ in range(limit):
        if page.evaluate("s => document.activeElement === document.querySelector(s)", selector):
            return
        page.keyboard.press(key)
    raise AssertionError(f"{key} never reached {selector}")


def test_the_page_works_with_the_keyboard_alone(server: str, browser: Any, tmp_path: Path) -> None:
    page = browser.new_page(viewport={"width": 1100, "height": 900})
    page.goto(server)
    sync_api.expect(page.locator("#dataset")).to_contain_text("demo (300 items)")

    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Skip to the message box"
    page.keyboard.press("Enter")
    assert page.evaluate("document.activeElement.id") == "message"
    page.evaluate(  # record every state of the reply text, to see it arrive in pieces
        """() => { window.__states = [];
        new MutationObserver(() => { const r = document.querySelector('.message.assistant .reply');
          if (r) window.__states.push(r.textContent); })
        .observe(document.getElementById('log'), {subtree: true, childList: true, characterData: true}); }"""
    )
    page.keyboard.type("Something eerie with ghosts")
    page.keyboard.press("Enter")

    cards = page.locator(".cards .card")
    sync_api.expect(cards).to_have_count(4)  # the cards come first, while the reply still streams
    reply = page.locator(".message.assistant .reply").last
    sync_api.expect(reply).to_contain_text("You might enjoy")
    sync_api.expect(reply).to_have_attribute("aria-busy", "false")
    assert reply.locator("strong").count() >= 1  # titles in bold, as elements the page made
    states = [s for s in page.evaluate("window.__states") if s]
    assert len(set(states)) >= 2 and states[0] != states[-1], states  # streamed, not one block
    first_title = cards.first.locator("h3").text_content()
    assert first_title and cards.first.locator(".card-meta").text_content()
    assert cards.first.locator(".card-summary").text_content()  # the demo's synopsis

    focus_by_keys(page, ".card .like", "Shift+Tab")  # back from the message box to the first card
    page.keyboard.press("Space")
    like = page.locator(".card .like").first
    sync_api.expect(like).to_have_attribute("aria-pressed", "true")
    sync_api.expect(page.locator("#status")).to_contain_text("You liked")
    session_id = page.evaluate("sessionStorage.getItem('recai.session')")
    profile = httpx.get(f"{server}/sessions/{session_id}").json()["profile"]
    assert len(profile["liked"]) == 1

    focus_by_keys(page, "details.trace summary", "Tab")
    page.keyboard.press("Enter")
    trace = page.locator("details.trace").first
    sync_api.expect(trace).to_have_attribute("open", "")
    sync_api.expect(trace).to_contain_text("semantic_search")
    sync_api.expect(trace).to_contain_text("rank")
    sync_api.expect(trace).to_contain_text("LLM call")
    page.evaluate("window.scrollTo(0, document.body.scrollHeight)")  # the sticky message box at the end
    shot = screenshot_folder(tmp_path) / "serve_page.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 0

    page.locator("#message").focus()
    page.keyboard.type("show me some markup")
    page.keyboard.press("Enter")
    sync_api.expect(page.locator(".message.assistant .reply").last).to_contain_text("<img src=x")
    assert page.locator("#log img").count() == 0 and page.evaluate("window.__pwned") is None

    focus_by_keys(page, "#reset", "Shift+Tab")
    page.keyboard.press("Enter")
    sync_api.expect(page.locator("#log > li")).to_have_count(1)  # only the greeting is left
    assert httpx.get(f"{server}/sessions/{session_id}").json()["turns"] == []
    page.close()


def test_the_page_is_readable_on_a_phone(server: str, browser: Any, tmp_path: Path) -> None:
    page = browser.new_page(viewport={"width": 390, "height": 844}, device_scale_factor=2, is_mobile=True)
    page.goto(server)
    page.fill("#message", "A gentle animated film")
    page.press("#message", "Enter")
    sync_api.expect(page.locator(".cards .card")).to_have_count(4)
    assert page.evaluate("document.documentElement.scrollWidth") <= 390  # no sideways scrolling
    box = page.locator(".cards .card").first.bounding_box()
    assert box is not None and box["width"] <= 390
    font = page.evaluate("parseFloat(getComputedStyle(document.querySelector('.card-summary')).fontSize)")
    assert font >= 14
    send = page.locator("#send").bounding_box()
    assert send is not None and send["height"] >= 44  # a comfortable touch target
    page.screenshot(path=str(screenshot_folder(tmp_path) / "serve_page_phone.png"), full_page=False)
    page.close()


def test_the_page_asks_for_the_token_when_the_server_wants_one(agent: Agent, browser: Any) -> None:
    from tests.serve.live import live_server

    with live_server(create_app(agent, ServeSettings(token="open-sesame"))) as (url, _):
        page = browser.new_page()
        page.goto(url)
        sync_api.expect(page.locator("#status")).to_contain_text("needs an access token")
        assert page.locator("#settings").get_attribute("open") == ""
        page.fill("#token", "open-sesame")
        page.press("#token", "Enter")
        assert page.evaluate("document.activeElement.id") == "message"
        page.keyboard.type("A gentle animated film")
        page.keyboard.press("Enter")
        sync_api.expect(page.locator(".cards .card")).to_have_count(4)
        page.evaluate("sessionStorage.setItem('recai.token', 'wrong')")
        page.reload()
        page.fill("#message", "Something else")
        page.press("#message", "Enter")
        sync_api.expect(page.locator(".message.error")).to_contain_text("bearer token")
        page.close()
