"""The web UI in a real browser: Debian's headless Chromium, driven by selenium, against
a live server on 127.0.0.1 over a real SQLite memory. Screenshots of every page go to
$REMEM_SCREENSHOTS (or a temp folder, printed) for people to look at.

Skipped when /usr/bin/chromium is missing, unless REMEM_REQUIRE_BROWSER=1 (CI)."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from remem import Memory, ids
from remem.keys import create_key
from remem.server.app import create_app
from remem.stores.base import Changes
from remem.testing import HashEmbedder
from remem.testing.http import running
from remem.types import Link

CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
XSS = 'Ana\'s note <script>window.__pwned = 1</script><img src=x onerror="window.__pwned=2">'
WIDE, NORMAL, ZOOMED = 1600, 1280, 640  # 80%, 100% and 200% zoom of a 1280 px window
# read now: the test run hides REMEM_* settings from the tests once they start
SCREENSHOTS = os.environ.get("REMEM_SCREENSHOTS")

if not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()):
    reason = f"needs Debian's chromium and chromium-driver ({CHROMIUM}, {CHROMEDRIVER})"
    if os.environ.get("REMEM_REQUIRE_BROWSER") == "1":
        pytest.fail(f"a real browser is required here: {reason}", pytrace=False)
    pytest.skip(reason, allow_module_level=True)

from selenium import webdriver  # noqa: E402  (only with a browser)
from selenium.common.exceptions import (  # noqa: E402
    NoAlertPresentException,
    StaleElementReferenceException,
)
from selenium.webdriver.chrome.options import Options  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.action_chains import ActionChains  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402
from selenium.webdriver.remote.webdriver import WebDriver  # noqa: E402
from selenium.webdriver.support import expected_conditions  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

LIFE = [
    ("2026-03-02T09:00:00", "s1", "Ana adopted a cat called Miso from the shelter"),
    ("2026-03-02T09:05:00", "s1", "Miso the cat hides under the sofa when it rains"),
    ("2026-04-11T18:30:00", "s2", "Ana's sister Eva lives in Lisbon and visits in May"),
    ("2026-05-20T20:00:00", "s2", "Ana started learning the cello with a teacher named Rui"),
    ("2026-06-01T08:00:00", "s3", "Ana ran her first half marathon in two hours and five minutes"),
    ("2026-07-15T12:00:00", "s3", "Ana moved to Porto for a new job at a bakery"),
]


@pytest.fixture(scope="module")
def shots() -> Path:
    folder = SCREENSHOTS or tempfile.mkdtemp(prefix="remem-ui-shots-")
    path = Path(folder)
    path.mkdir(parents=True, exist_ok=True)
    print(f"screenshots in {path}")
    return path


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("ui-browser")


@pytest.fixture(scope="module")
def local(folder: Path) -> Iterator[tuple[Memory, str, list[str]]]:
    """A keyless loopback server (the local user) over a memory of a small life."""
    with Memory(folder / "local.db", embedder=HashEmbedder(), llm=None) as memory:
        note_ids = [
            memory.add(text, user_id="ana", session_id=session, occurred_at=at).note_ids[0]
            for at, session, text in LIFE
        ]
        _link(memory, note_ids[0], note_ids[1], "elaborates", "both are about Miso")
        _link(memory, note_ids[0], note_ids[2], "same_person", "Ana")
        _link(memory, note_ids[3], note_ids[0], "follows", "later that spring")
        with running(create_app(memory, max_upload_bytes=4 * 1024 * 1024)) as url:
            yield memory, url, note_ids


def _link(memory: Memory, source: str, target: str, relation: str, reason: str) -> None:
    link = Link(ids.new_id(ids.LINK), source, target, relation, 0.8, reason, datetime.now(UTC))
    memory.store.apply(Changes(links=[link]))


@pytest.fixture(scope="module")
def browser(folder: Path) -> Iterator[WebDriver]:
    options = Options()
    options.binary_location = CHROMIUM
    profile = folder / "chromium-profile"
    for argument in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={profile}",
        f"--window-size={NORMAL},900",
    ):
        options.add_argument(argument)
    driver = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def _wait(driver: WebDriver, css: str, seconds: float = 10) -> Any:
    return WebDriverWait(driver, seconds).until(
        expected_conditions.presence_of_element_located((By.CSS_SELECTOR, css))
    )


def _wait_text(driver: WebDriver, css: str, text: str, seconds: float = 10) -> None:
    """Wait until the element `css` says `text` (a page that replaces another)."""
    WebDriverWait(driver, seconds).until(
        expected_conditions.text_to_be_present_in_element((By.CSS_SELECTOR, css), text)
    )


def _shot(driver: WebDriver, shots: Path, name: str) -> None:
    height = driver.execute_script("return document.documentElement.scrollHeight")
    width = driver.execute_script("return window.innerWidth")
    driver.set_window_size(max(width, 320), min(max(int(height) + 120, 600), 4000))
    driver.save_screenshot(str(shots / f"{name}.png"))
    driver.set_window_size(NORMAL, 900)


def _texts(driver: WebDriver, css: str) -> list[str]:
    return [element.text for element in driver.find_elements(By.CSS_SELECTOR, css)]


def _no_alert(driver: WebDriver) -> None:
    try:
        alert = driver.switch_to.alert
    except NoAlertPresentException:
        return
    text = alert.text
    alert.dismiss()
    pytest.fail(f"a page opened an alert: {text!r}")


def test_the_list_shows_newest_first_and_search_highlights(
    local: tuple[Memory, str, list[str]], browser: WebDriver, shots: Path
) -> None:
    memory, url, _ = local
    browser.get(url + "/")
    _wait(browser, "ol#list li")
    rows = _texts(browser, "ol#list li .text")
    assert rows == [text for _, _, text in reversed(LIFE)]
    _shot(browser, shots, "memories")
    search = browser.find_element(By.ID, "f-q")
    search.send_keys("cat Miso", Keys.ENTER)
    _wait(browser, "ol#results li mark")
    found = _texts(browser, "ol#results li .text")
    expected = [hit.text for hit in memory.search("cat Miso", user_id="ana", limit=50)]
    assert found == expected and "Miso" in found[0]
    assert {m.text.lower() for m in browser.find_elements(By.CSS_SELECTOR, "mark")} <= {
        "cat",
        "miso",
    }
    _shot(browser, shots, "search")


def test_editing_a_memory_makes_a_new_version_with_a_diff(
    local: tuple[Memory, str, list[str]], browser: WebDriver, shots: Path
) -> None:
    memory, url, note_ids = local
    browser.get(f"{url}/")
    browser.find_element(By.LINK_TEXT, LIFE[3][2]).click()
    _wait(browser, "#memory-text")
    assert browser.current_url == f"{url}/memories/{note_ids[3]}"
    assert "version 1" in browser.find_element(By.ID, "memory-version").text
    box = browser.find_element(By.ID, "e-text")
    box.clear()
    box.send_keys("Ana started learning the cello with a teacher named Rui Silva")
    browser.find_element(By.CSS_SELECTOR, "#edit-form button[type=submit]").click()
    _wait(browser, ".flash")
    assert "version 2" in browser.find_element(By.ID, "memory-version").text
    assert browser.find_element(By.CSS_SELECTOR, "#versions ins").text.strip() == "Silva"
    assert not browser.find_elements(By.CSS_SELECTOR, "#versions del")
    assert memory.get(note_ids[3]).version == 2
    assert "cello" in browser.find_element(By.CSS_SELECTOR, "blockquote .text").text
    assert "follows" in browser.find_element(By.TAG_NAME, "table").text
    _shot(browser, shots, "memory")


def test_a_stale_edit_says_who_won_and_keeps_the_draft(
    local: tuple[Memory, str, list[str]], browser: WebDriver
) -> None:
    memory, url, note_ids = local
    browser.get(f"{url}/memories/{note_ids[4]}")
    memory.update(note_ids[4], text="Ana ran a half marathon in 2:05")  # someone else
    box = browser.find_element(By.ID, "e-text")
    box.clear()
    box.send_keys("Ana ran her first half marathon in Porto")
    browser.find_element(By.CSS_SELECTOR, "#edit-form button[type=submit]").click()
    problem = _wait(browser, ".problem").text
    assert "now at version 2" in problem and "you edited version 1" in problem
    assert browser.find_element(By.ID, "e-text").get_attribute("value") == (
        "Ana ran her first half marathon in Porto"
    )
    assert memory.get(note_ids[4]).text == "Ana ran a half marathon in 2:05"


def test_the_graph_draws_the_notes_and_opens_one(
    local: tuple[Memory, str, list[str]], browser: WebDriver, shots: Path
) -> None:
    _, url, note_ids = local
    browser.get(f"{url}/graph?id={note_ids[0]}")
    graph = _wait(browser, "#graph[data-nodes]")
    assert graph.get_attribute("data-nodes") == "4"
    assert graph.get_attribute("data-edges") == "3"
    assert browser.find_elements(By.CSS_SELECTOR, "#graph canvas")
    # a click on a node opens its memory (cytoscape draws on a canvas: click where it is)
    x, y, width, height = browser.execute_script(
        "const box = document.getElementById('graph').getBoundingClientRect();"
        "const at = window.rememGraph.getElementById(arguments[0]).renderedPosition();"
        "return [at.x, at.y, box.width, box.height];",
        note_ids[1],
    )
    ActionChains(browser).move_to_element_with_offset(
        graph, int(x - width / 2), int(y - height / 2)
    ).click().perform()
    WebDriverWait(browser, 10).until(lambda d: d.current_url.endswith(note_ids[1]))
    assert _wait(browser, "#memory-text").text == LIFE[1][2]
    browser.back()
    _wait(browser, "#graph[data-nodes]")
    _shot(browser, shots, "graph")


def test_what_the_agent_sees_is_exactly_the_context(
    local: tuple[Memory, str, list[str]], browser: WebDriver, shots: Path
) -> None:
    memory, url, _ = local
    browser.get(f"{url}/context?q=where+does+Ana+live&user=ana&budget=1500")
    shown = _wait(browser, "#context-text").get_attribute("textContent")
    expected = memory.context("where does Ana live", user_id="ana", budget_tokens=1500)
    assert shown == expected.text
    assert _texts(browser, "#context-items tr.dropped") == []
    _shot(browser, shots, "context")
    browser.get(f"{url}/context?q=where+does+Ana+live&user=ana&budget=60")
    smaller = memory.context("where does Ana live", user_id="ana", budget_tokens=60)
    assert _wait(browser, "#context-text").get_attribute("textContent") == smaller.text
    dropped = browser.find_elements(By.CSS_SELECTOR, "#context-items tr.dropped")
    assert len(dropped) == len(expected.items) - len(smaller.items) > 0
    _shot(browser, shots, "context-small-budget")


def test_the_budget_slider_updates_the_block_in_place(
    local: tuple[Memory, str, list[str]], browser: WebDriver
) -> None:
    memory, url, _ = local
    browser.get(f"{url}/context?q=cat&user=ana&budget=1500")
    _wait(browser, "#context-text")
    slider = browser.find_element(By.ID, "c-budget")
    browser.execute_script(
        "arguments[0].value = 100; arguments[0].dispatchEvent(new Event('input', {bubbles: true}))",
        slider,
    )
    WebDriverWait(browser, 10).until(lambda d: "budget=100" in d.current_url)
    shown = _wait(browser, "#context-text").get_attribute("textContent")
    assert shown == memory.context("cat", user_id="ana", budget_tokens=100).text
    assert browser.find_element(By.ID, "budget-shown").text == "100"


def test_a_script_in_a_memory_is_shown_as_text_and_never_runs(
    local: tuple[Memory, str, list[str]], browser: WebDriver, shots: Path
) -> None:
    memory, url, _ = local
    hostile = memory.add(XSS, user_id="ana", session_id="s9").note_ids[0]
    _link(memory, hostile, local[2][0], "</script><script>window.__pwned=3</script>", XSS)
    for path in ("/", "/?q=note+script&user=ana", f"/memories/{hostile}", f"/graph?id={hostile}"):
        browser.get(url + path)
        _wait(browser, "main")
        _no_alert(browser)
        assert browser.execute_script("return window.__pwned === undefined")
        assert not browser.find_elements(By.CSS_SELECTOR, "main img[src=x]")
    browser.get(f"{url}/memories/{hostile}")
    assert browser.find_element(By.ID, "memory-text").text == XSS
    browser.get(f"{url}/context?q=note+script&user=ana")
    assert XSS in _wait(browser, "#context-text").get_attribute("textContent")
    assert browser.execute_script("return window.__pwned === undefined")
    _shot(browser, shots, "xss-as-text")


def test_forgetting_a_memory_takes_it_out_of_list_and_search(
    local: tuple[Memory, str, list[str]], browser: WebDriver
) -> None:
    memory, url, note_ids = local
    browser.get(f"{url}/memories/{note_ids[5]}")
    browser.find_element(By.CSS_SELECTOR, "#forget-form button").click()
    browser.switch_to.alert.accept()  # "Forget this memory?"
    assert "forgotten" in _wait(browser, ".flash").text
    assert LIFE[5][2] not in _texts(browser, "ol#list li .text")
    browser.get(f"{url}/?q=bakery+Porto&user=ana")
    _wait(browser, "#results")
    assert all("bakery" not in text for text in _texts(browser, "ol#results li .text"))
    assert note_ids[5] not in {hit.id for hit in memory.search("bakery Porto", user_id="ana")}
    browser.get(f"{url}/memories/{note_ids[5]}")
    assert "Not found" in browser.find_element(By.TAG_NAME, "h1").text


def test_a_post_without_the_csrf_token_is_refused(
    local: tuple[Memory, str, list[str]], browser: WebDriver
) -> None:
    memory, url, note_ids = local
    browser.get(f"{url}/memories/{note_ids[2]}")
    browser.execute_script(  # the page's own form, its token taken out
        "const form = document.getElementById('forget-form');"
        "form.querySelector('input[name=csrf]').remove(); form.submit();"
    )
    _wait_text(browser, "h1", "Refused")
    assert memory.get(note_ids[2]).deleted_at is None
    browser.get(f"{url}/memories/{note_ids[2]}")
    browser.execute_script(
        "const form = document.getElementById('forget-form');"
        "form.querySelector('input[name=csrf]').value = 'forged'; form.submit();"
    )
    _wait_text(browser, "h1", "Refused")
    assert memory.get(note_ids[2]).deleted_at is None


def test_adding_from_the_text_box_shows_the_new_memory(
    local: tuple[Memory, str, list[str]], browser: WebDriver, shots: Path
) -> None:
    memory, url, _ = local
    browser.get(f"{url}/add")
    _shot(browser, shots, "add")
    browser.find_element(By.ID, "a-text").send_keys("Ana's favourite tea is genmaicha")
    browser.find_element(By.ID, "f-user").send_keys("ana")
    browser.find_element(By.ID, "a-when").send_keys("2026-08-01")
    browser.find_element(By.CSS_SELECTOR, "#add-form button").click()
    assert _wait(browser, "#memory-text").text == "Ana's favourite tea is genmaicha"
    note_id = browser.current_url.rsplit("/", 1)[1]
    assert memory.get(note_id).occurred_at.date().isoformat() == "2026-08-01"


def test_uploading_an_export_imports_it_with_progress(
    local: tuple[Memory, str, list[str]], browser: WebDriver, folder: Path
) -> None:
    memory, url, _ = local
    with Memory(folder / "other.db", embedder=HashEmbedder(), llm=None) as other:
        other.add("Ana keeps bees on the roof", user_id="ana")
        other.export(folder / "bees.jsonl")
    browser.get(f"{url}/add")
    browser.find_element(By.ID, "i-file").send_keys(str(folder / "bees.jsonl"))
    browser.find_element(By.CSS_SELECTOR, "#import-form button").click()
    result = WebDriverWait(browser, 20, ignored_exceptions=[StaleElementReferenceException]).until(
        lambda d: d.find_element(By.CSS_SELECTOR, "#import-result").text
    )
    assert "Imported bees.jsonl" in result and "already here" in result
    progress = browser.find_element(By.ID, "upload-progress")
    assert progress.get_attribute("value") == "100"
    assert any(note.text == "Ana keeps bees on the roof" for note in memory.list().items)


def test_a_refused_upload_says_why_in_the_page(
    local: tuple[Memory, str, list[str]], browser: WebDriver, folder: Path, shots: Path
) -> None:
    broken = folder / "broken.jsonl"
    broken.write_text('{"type": "remem-export", "version": 999}\n', encoding="utf-8")
    huge = folder / "huge.txt"
    huge.write_bytes(b"<b>x</b> " * (5 * 1024 * 1024 // 9))  # over the 4 MB upload limit set above
    _, url, _ = local
    for path, expected in ((broken, "export format"), (huge, "request body over")):
        browser.get(f"{url}/add")
        browser.find_element(By.ID, "i-file").send_keys(str(path))
        browser.find_element(By.ID, "i-user").send_keys("ana")
        browser.find_element(By.CSS_SELECTOR, "#import-form button").click()
        problem = WebDriverWait(
            browser, 20, ignored_exceptions=[StaleElementReferenceException]
        ).until(lambda d: d.find_element(By.CSS_SELECTOR, "#import-result .problem").text)
        assert expected in problem, problem
        assert not browser.find_elements(By.CSS_SELECTOR, "#import-result b")
    _shot(browser, shots, "upload-refused")


def test_timeline_and_health_pages_render(
    local: tuple[Memory, str, list[str]], browser: WebDriver, shots: Path
) -> None:
    memory, url, _ = local
    browser.get(f"{url}/timeline?by=month")
    labels = _texts(browser, "section.day h2")
    assert labels[-3:] == ["May 2026 1", "April 2026 1", "March 2026 2"]
    assert any("session s1" in text for text in _texts(browser, ".session-label"))
    _shot(browser, shots, "timeline")
    browser.get(f"{url}/health")
    assert browser.find_element(By.ID, "embedder").text == memory.embedder.model_id
    assert "notes" in browser.find_element(By.ID, "counts").text
    _shot(browser, shots, "health")


def test_keyboard_dark_mode_and_zoom(
    local: tuple[Memory, str, list[str]], browser: WebDriver, shots: Path
) -> None:
    _, url, note_ids = local
    browser.get(url + "/")
    browser.find_element(By.TAG_NAME, "body").send_keys(Keys.TAB)
    assert browser.switch_to.active_element.text == "Skip to content"
    browser.switch_to.active_element.send_keys(Keys.TAB)
    assert browser.switch_to.active_element.text == "remem"
    for width, name in ((ZOOMED, "200"), (WIDE, "80")):
        browser.set_window_size(width, 900)
        for path in ("/", f"/memories/{note_ids[0]}", "/context?q=cat&user=ana"):
            browser.get(url + path)
            overflow = browser.execute_script(
                "return document.documentElement.scrollWidth - window.innerWidth"
            )
            assert overflow <= 0, f"{path} scrolls sideways at {name}% zoom"
        _shot_at(browser, shots, f"memory-zoom-{name}", width)
    browser.set_window_size(NORMAL, 900)
    browser.execute_cdp_cmd(
        "Emulation.setEmulatedMedia",
        {"features": [{"name": "prefers-color-scheme", "value": "dark"}]},
    )
    try:
        browser.get(url + "/")
        background = browser.execute_script(
            "return getComputedStyle(document.body).backgroundColor"
        )
        assert background == "rgb(21, 23, 27)"
        _shot(browser, shots, "memories-dark")
        browser.get(f"{url}/graph?id={note_ids[0]}")
        _wait(browser, "#graph[data-nodes]")
        _shot(browser, shots, "graph-dark")
    finally:
        browser.execute_cdp_cmd("Emulation.setEmulatedMedia", {"features": []})


def test_the_profile_shows_topics_and_takes_a_correction(
    local: tuple[Memory, str, list[str]], browser: WebDriver, shots: Path
) -> None:
    memory, url, _ = local
    cat = ["I adopted a cat called Miso", "Miso the cat sleeps all day", "My cat Miso likes boxes"]
    cello = ["I play the cello every evening", "Cello lessons with Rui", "New cello strings"]
    for round_ in range(3):
        for i, text in enumerate(cat + cello):
            message = {"role": "user", "name": "Bea", "content": f"{text} ({round_})."}
            memory.add([message], user_id="bea", session_id=f"b{i % 3}")
    memory.add([{"role": "user", "content": "I live in Porto now."}], user_id="bea")
    browser.get(f"{url}/profile?user=bea")
    topics = browser.find_elements(By.CSS_SELECTOR, "details.topic summary strong")
    assert len(topics) == len(memory.topics(user_id="bea")) > 0
    _shot(browser, shots, "profile")
    home = browser.find_element(By.XPATH, "//th[text()='home']/..")
    home.find_element(By.NAME, "value").send_keys("Lisbon", Keys.ENTER)
    assert "your correction" in _wait(browser, ".flash").text
    home = browser.find_element(By.XPATH, "//th[text()='home']/..")
    assert "Lisbon" in home.text
    browser.find_element(By.PARTIAL_LINK_TEXT, "Graph of this topic").click()
    graph = _wait(browser, "#graph[data-nodes]")
    assert int(graph.get_attribute("data-nodes") or 0) == len(
        memory.topics(user_id="bea")[0].note_ids
    )


def test_older_memories_load_in_place_and_take_the_focus(
    local: tuple[Memory, str, list[str]], browser: WebDriver
) -> None:
    memory, url, _ = local
    texts = [f"walk number {n}" for n in range(1, 56)]
    memory.add([{"role": "user", "content": text} for text in texts], user_id="cy")
    browser.get(f"{url}/?user=cy")
    assert len(browser.find_elements(By.CSS_SELECTOR, "ol#list > li:not(.more)")) == 50
    more = browser.find_element(By.CSS_SELECTOR, "#more a")
    more.send_keys(Keys.ENTER)  # by keyboard
    WebDriverWait(browser, 10).until(
        lambda d: len(d.find_elements(By.CSS_SELECTOR, "ol#list > li:not(.more)")) == 55
    )
    assert not browser.find_elements(By.ID, "more")  # nothing older
    assert browser.current_url == f"{url}/?user=cy"  # loaded in place
    shown = _texts(browser, "ol#list li .text")
    expected = [n.text for n in memory.list(user_id="cy", order="newest", limit=100).items]
    assert shown == expected
    focused = browser.switch_to.active_element
    assert focused.get_attribute("href") == browser.find_elements(
        By.CSS_SELECTOR, "ol#list > li a.memory-link"
    )[50].get_attribute("href")


def _shot_at(driver: WebDriver, shots: Path, name: str, width: int) -> None:
    height = driver.execute_script("return document.documentElement.scrollHeight")
    driver.set_window_size(width, min(max(int(height) + 120, 600), 4000))
    driver.save_screenshot(str(shots / f"{name}.png"))


@pytest.fixture(scope="module")
def tenants(folder: Path) -> Iterator[tuple[Memory, str, dict[str, str]]]:
    """A server with keys: tenants a and b, with a's memories only."""
    with Memory(folder / "tenants.db", embedder=HashEmbedder(), llm=None) as memory:
        secrets = {name: create_key(memory.store, name)[1] for name in ("a", "b")}
        memory.as_tenant("a").add("Tenant a's secret plan is to sail to Madeira", user_id="ana")
        with running(create_app(memory, open_without_keys=True)) as url:
            yield memory, url, secrets


def test_a_tenant_signs_in_and_sees_only_its_memories(
    tenants: tuple[Memory, str, dict[str, str]], browser: WebDriver, shots: Path
) -> None:
    memory, url, secrets = tenants
    browser.delete_all_cookies()
    browser.get(url + "/")
    _wait(browser, "#signin-form")
    assert "/signin" in browser.current_url
    _shot(browser, shots, "signin")
    cookie_names = {cookie["name"]: cookie for cookie in browser.get_cookies()}
    assert cookie_names["remem_session"]["httpOnly"] is True
    assert cookie_names["remem_session"]["sameSite"] == "Strict"
    _sign_in(browser, "rk_not-a-key")
    assert "not valid" in _wait(browser, ".problem").text
    _sign_in(browser, secrets["b"])
    assert "tenant b" in browser.find_element(By.CSS_SELECTOR, ".who").text
    assert _texts(browser, "ol#list li .text") == []
    browser.get(url + "/?q=secret+plan+Madeira&user=ana")
    assert _texts(browser, "ol#results li") == []
    a_note = memory.as_tenant("a").list().items[0].id
    browser.get(f"{url}/memories/{a_note}")
    assert "Not found" in browser.find_element(By.TAG_NAME, "h1").text
    browser.get(f"{url}/graph?id={a_note}")
    assert "Not found" in browser.find_element(By.TAG_NAME, "h1").text
    assert secrets["b"] not in str(browser.get_cookies())
    browser.find_element(By.CSS_SELECTOR, ".who button").click()  # sign out
    _wait(browser, "#signin-form")
    _sign_in(browser, secrets["a"])
    assert _texts(browser, "ol#list li .text") == ["Tenant a's secret plan is to sail to Madeira"]
    browser.delete_all_cookies()


def _sign_in(browser: WebDriver, secret: str) -> None:
    """Send the sign-in form and wait for the page it leads to."""
    field = _wait(browser, "#s-key")
    field.clear()
    before = browser.find_element(By.TAG_NAME, "html")
    field.send_keys(secret, Keys.ENTER)
    WebDriverWait(browser, 10).until(expected_conditions.staleness_of(before))
