"""The home page, in headless Chromium against a real server: it shows a prediction, not just a form."""

from __future__ import annotations

import re
import subprocess
from urllib.parse import quote

import httpx
import pytest
from support import running

from reviewstars.models import load_predictor
from reviewstars.serving import create_app

REVIEW = "Amazing food, excellent service, the best ever!"
SCORES = {"accuracy": 0.6123, "macro_f1": 0.6012, "n": 150, "split": "validation", "confusion_matrix": [[1]]}


@pytest.fixture(scope="module")
def page_server(linear_model):
    with running(create_app(load_predictor(linear_model), name="linear", info={"metrics": SCORES})) as url:
        yield url


def headless(browser: str, profile, *arguments: str) -> subprocess.CompletedProcess:
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
             "--disable-component-update", "--disable-sync", f"--user-data-dir={profile}", "--virtual-time-budget=5000"]
    return subprocess.run([browser, *flags, *arguments], capture_output=True, text=True, timeout=120)


def test_the_page_predicts_a_review_given_in_its_address(browser, page_server, tmp_path):
    dom = headless(browser, tmp_path / "profile", "--dump-dom", f"{page_server}/?text={quote(REVIEW)}").stdout
    expected = httpx.post(f"{page_server}/predict", json={"texts": [REVIEW]}).json()["predictions"][0]
    stars = re.search(r'<div id="stars" data-stars="(\d)">([★☆]+)</div>', dom)
    assert stars, "the stars element was filled in"
    assert int(stars.group(1)) == expected["stars"] and stars.group(2).count("★") == expected["stars"]
    widths = {int(k): float(w) for k, w in re.findall(r'<div class="row[^"]*" id="row-(\d)">.*?style="width: ([\d.]+)%;"', dom)}
    assert widths == pytest.approx({k: 100 * expected["probabilities"][str(k)] for k in range(1, 6)}, abs=0.06)
    assert "accuracy 0.612 · macro-F1 0.601 on 150 validation reviews" in dom and "linear · linear ·" in dom
    # and why: the review with the words that raised its rating marked, as /explain weighs them
    explanation = httpx.post(f"{page_server}/explain", json={"text": REVIEW}).json()
    raising = max(explanation["words"], key=lambda w: w["stars_effect"])
    assert raising["stars_effect"] > 0 and re.search(rf'<mark class="up"[^>]*title="\+{raising["stars_effect"]:.2f} stars"[^>]*>'
                                                     rf'{re.escape(raising["word"])}</mark>', dom)
    assert re.search(r'<p id="raised" class="words">Raised it: ' + re.escape(raising["word"]), dom)
    assert re.sub(r"<[^>]+>", "", re.search(r'<p id="explained">(.*?)</p>', dom).group(1)) == REVIEW  # the review, whole


def test_the_page_renders_at_1280_wide(browser, page_server, tmp_path):
    shot = tmp_path / "page.png"
    headless(browser, tmp_path / "profile", "--window-size=1280,900", f"--screenshot={shot}", f"{page_server}/?text={quote(REVIEW)}")
    assert shot.read_bytes()[:4] == b"\x89PNG" and shot.stat().st_size > 10_000


def test_the_page_marks_the_words_after_an_emoji_where_they_are(browser, page_server, tmp_path):
    """Offsets count code points; the page sliced UTF-16 units, and each emoji moved every mark by one."""
    review = "\U0001F600\U0001F600 Amazing food, excellent service!"
    dom = headless(browser, tmp_path / "profile", "--dump-dom", f"{page_server}/?text={quote(review)}").stdout
    marked = re.findall(r"<mark[^>]*>([^<]*)</mark>", dom)
    assert marked and set(marked) <= {"Amazing", "food", "excellent", "service", "!"}, marked
    assert re.sub(r"<[^>]+>", "", re.search(r'<p id="explained">(.*?)</p>', dom).group(1)) == review


def test_a_server_with_a_key_asks_for_it_and_rates_with_the_one_a_link_carries(browser, linear_model, tmp_path):
    """With --api-key-file the page stayed open but could rate nothing: every try said "this
    server needs its key", and the page had nowhere to give it."""
    key = "a-key-of-twenty-characters"
    with running(create_app(load_predictor(linear_model), name="linear", api_key=key)) as url:
        asked = headless(browser, tmp_path / "one", "--dump-dom", f"{url}/?text={quote(REVIEW)}").stdout
        keyed = headless(browser, tmp_path / "two", "--dump-dom", f"{url}/?text={quote(REVIEW)}#key={key}").stdout
        expected = httpx.post(f"{url}/predict", json={"texts": [REVIEW]}, headers={"authorization": f"Bearer {key}"}).json()
    assert '<div id="keyrow">' in asked and "this server needs its key" in asked and 'data-stars=""' in asked
    assert '<div id="keyrow" hidden="">' in keyed and f'data-stars="{expected["predictions"][0]["stars"]}"' in keyed
    assert "linear · linear ·" in keyed and key not in keyed.split("<script>")[0]  # the key left the address
