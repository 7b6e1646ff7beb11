"""The Library of Congress client against a fake loc.gov on 127.0.0.1 (never the real network): paging,
rights, resuming, faults (429 with Retry-After, 500s, timeouts, truncated bodies, bad JSON, wrong
content type), the rate limits as the server saw them, the command line, and the bundled stand-ins."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import env, loc
from helpers.loc.api import Listing, parse_collection_page, parse_item
from helpers.loc.http import RateLimiter, RetryPolicy, Window, retry_after_seconds
from fake_loc import FREE, RESTRICTED, FakeLoc, photo_bytes
from scripts import load_script

REPO = Path(__file__).resolve().parents[1]
ITEMS = {f"20046640{n:02d}": {"seed": n, "title": f"portrait {n}" if n % 2 else f"view {n}"} for n in range(1, 8)}
RESTRICTED_ID = "2004664005"
ITEMS[RESTRICTED_ID]["rights"] = RESTRICTED


class FakeClock:
    """Simulated time: sleeping only moves the clock, so Retry-After and backoff cost the tests nothing."""

    def __init__(self):
        self.t, self.sleeps = 1000.0, []

    def now(self):
        return self.t

    def sleep(self, seconds):
        self.sleeps.append(seconds)
        self.t += seconds


def _session(clock=None, limits=None, attempts=3):
    policy = RetryPolicy(attempts=attempts, backoff=0.5, backoff_cap=2.0, max_retry_after=60.0, timeout=(2.0, 0.3))
    return loc.PoliteSession(RateLimiter(limits, clock or FakeClock()), policy)


def _fetch(fake, out, session=None, **settings):
    settings = loc.FetchSettings(**({"out": out, "api_base": fake.base, "size": 64, "per_page": 3} | settings))
    return loc.fetch_daguerreotypes(settings, session=session or _session(), progress=False)


def _rows(out):
    with open(Path(out) / "manifest.csv", newline="", encoding="utf-8") as handle:
        return {row["id"]: row for row in csv.DictReader(handle)}


def _assert_folder_is_whole(out):
    """Every file is a complete image named by exactly one manifest row; nothing partial, nothing twice."""
    rows = _rows(out)
    files = sorted(p.name for p in Path(out).iterdir() if p.name != "manifest.csv")
    downloaded = {r["file"]: r for r in rows.values() if r["status"] == "downloaded"}
    assert files == sorted(downloaded), files
    for name, row in downloaded.items():
        data = (Path(out) / name).read_bytes()
        assert loc.manifest.sha256_hex(data) == row["sha256"]
    shas = [r["sha256"] for r in downloaded.values()]
    assert len(shas) == len(set(shas))


@pytest.fixture
def fake():
    with FakeLoc({k: dict(v) for k, v in ITEMS.items()}) as server:
        yield server


# ---------------------------------------------------------------------------------------------- units

def test_rate_limiter_holds_every_window_in_simulated_time():
    clock = FakeClock()
    limiter = RateLimiter({"any": (3, 1.0), "collection": (2, 5.0)}, clock)
    sent = []
    for kind in ["collection", "item", "item", "collection", "item", "collection", "item", "item"]:
        limiter.acquire(kind)
        sent.append((clock.now(), kind))
    times = [t for t, _ in sent]
    pages = [t for t, k in sent if k == "collection"]
    assert all(sum(s <= t < s + 1.0 for t in times) <= 3 for s in times)
    assert all(sum(s <= t < s + 5.0 for t in pages) <= 2 for s in pages)
    assert pages[2] - pages[0] >= 5.0
    assert Window(1, 2.0).wait_time(0.0) == 0.0


def test_retry_after_reads_seconds_and_http_dates():
    assert retry_after_seconds("7") == 7.0
    assert retry_after_seconds("Wed, 21 Oct 2015 07:28:10 GMT", now_epoch=1445412480.0) == pytest.approx(10.0)
    assert retry_after_seconds(None) is None and retry_after_seconds("soon") is None


def test_item_json_becomes_a_record_with_an_iiif_url():
    listing = Listing("2004664001", "t", "http://www.loc.gov/item/2004664001/", "")
    service = "https://tile.loc.gov/image-services/iiif/service:pnp:dag:1a00000:1a00001u"
    doc = {"item": {"title": "[Unidentified woman]", "date": "1850", "contributor_names": ["Brady, Mathew B."],
                    "rights_advisory": ["No known restrictions on publication."]},
           "resources": [{"files": [[{"mimetype": "image/jpeg", "url": service + "/full/pct:25/0/default.jpg"},
                                     {"mimetype": "image/jp2", "info": service + "/info.json"}]]}]}
    record = parse_item(doc, listing, 512)
    assert record.image_url == service + "/full/!512,512/0/default.jpg"
    assert (record.title, record.date, record.creator) == ("[Unidentified woman]", "1850", "Brady, Mathew B.")
    assert record.free_to_use
    doc["item"]["rights_advisory"] = "Publication may be restricted."
    assert not parse_item(doc, listing, 512).free_to_use
    doc["item"]["rights_advisory"], doc["item"]["access_restricted"] = FREE, True
    assert not parse_item(doc, listing, 512).free_to_use
    with pytest.raises(ValueError):
        parse_item({"results": []}, listing, 512)
    listings, more = parse_collection_page({"results": [{"id": "http://www.loc.gov/collections/daguerreotypes/"},
                                                        {"id": "http://www.loc.gov/item/2004664002/"}],
                                            "pagination": {"next": None}})
    assert [x.item_id for x in listings] == ["2004664002"] and not more


# ---------------------------------------------------------------------------------------------- runs

def test_fetch_pages_records_rights_skips_duplicates_and_resumes(fake, tmp_path):
    out = tmp_path / "loc"
    fake.relisted = {2: ["2004664001"]}  # loc.gov's pages can shift: an item listed twice
    fake.items["2004664007"]["seed"] = fake.items["2004664006"]["seed"]  # the same photo under two ids
    report = _fetch(fake, out)
    assert report.exit_code == 0, report.failures
    rows = _rows(out)
    assert set(rows) == set(ITEMS)
    assert rows[RESTRICTED_ID]["status"] == "not free to use" and rows[RESTRICTED_ID]["file"] == ""
    assert rows["2004664007"]["status"] == "duplicate of 2004664006" and rows["2004664007"]["file"] == ""
    assert rows["2004664001"]["title"] == "portrait 1" and rows["2004664001"]["creator"] == "Brady, Mathew B."
    assert rows["2004664001"]["rights_advisory"] == FREE
    assert rows["2004664001"]["image_url"].endswith("/full/!64,64/0/default.jpg")
    assert report.payload["held"] == 5 and report.payload["outcomes"]["listed twice"] == 1
    assert len(fake.requests_to("/item/2004664001/")) == 1
    _assert_folder_is_whole(out)
    assert loc.downloaded_photos(out) == [out / rows[i]["file"] for i in sorted(rows) if rows[i]["file"]]

    fake.log.clear()
    again = _fetch(fake, out)
    assert again.exit_code == 0 and again.payload["new"] == [] and again.payload["held"] == 5
    assert fake.requests_to("/item/") == [] and fake.requests_to("/iiif/") == []  # only the listing again

    (out / rows["2004664002"]["file"]).unlink()  # a photo lost since: fetched again, nothing else
    fake.log.clear()
    third = _fetch(fake, out)
    assert third.payload["new"] == [str(out / rows["2004664002"]["file"])]
    assert fake.requests_to("/item/") == ["/item/2004664002/"]
    assert _rows(out)["2004664002"]["status"] == "downloaded"
    _assert_folder_is_whole(out)


def test_a_file_left_without_its_row_is_adopted_if_identical_and_never_replaced(fake, tmp_path):
    out = tmp_path / "loc"
    out.mkdir()
    (out / "2004664001.jpg").write_bytes(photo_bytes(1, 64))  # a run stopped between file and row
    (out / "2004664003.jpg").write_bytes(b"someone else's file")
    report = _fetch(fake, out, limit=3)
    assert [f["input"] for f in report.failures] == ["2004664003"]
    assert "exists with other content" in report.failures[0]["reason"]
    assert (out / "2004664003.jpg").read_bytes() == b"someone else's file"
    assert _rows(out)["2004664001"]["file"] == "2004664001.jpg" and "2004664003" not in _rows(out)


def test_limit_and_query_choose_what_is_held(fake, tmp_path):
    out = tmp_path / "loc"
    first = _fetch(fake, out, limit=2, query="portrait")
    assert first.payload["held"] == 2 and all("portrait" in _rows(out)[i]["title"] for i in _rows(out))
    assert len(fake.requests_to("/collections/")) == 1  # stops paging once the limit is reached
    more = _fetch(fake, out, limit=3, query="portrait")
    assert more.payload["held"] == 3 and len(more.payload["new"]) == 1
    _assert_folder_is_whole(out)


def test_faults_are_retried_or_named_and_a_rerun_fetches_only_what_is_missing(fake, tmp_path):
    out, clock = tmp_path / "loc", FakeClock()
    iiif = "/iiif/service:pnp:dag:{}/full/!64,64/0/default.jpg"
    fake.faults = {
        "/collections/daguerreotypes/": ["500", "badjson"],
        "/item/2004664001/": ["429:7"],  # Retry-After obeyed (in simulated time)
        "/item/2004664002/": ["badjson", "drop"],
        iiif.format("2004664003"): ["truncated"],
        iiif.format("2004664004"): ["slow:1.0"],  # past the 0.3 s read timeout
        iiif.format("2004664006"): ["always:html"],  # a wrong content type: named, not retried
        "/item/2004664007/": ["always:badjson"],  # stays invalid: named after every attempt
    }
    report = _fetch(fake, out, session=_session(clock))
    assert report.exit_code == 1
    failed = {f["input"]: f["reason"] for f in report.failures}
    assert set(failed) == {"2004664006", "2004664007"}
    assert "content type 'text/html'" in failed["2004664006"] and "not valid JSON" in failed["2004664007"]
    assert len(fake.requests_to(iiif.format("2004664006"))) == 1
    assert len(fake.requests_to("/item/2004664007/")) == 3
    assert 7.0 in clock.sleeps  # the 429's Retry-After
    assert len(fake.requests_to("/item/2004664002/")) == 3
    assert len(fake.requests_to(iiif.format("2004664003"))) == 2
    assert len(fake.requests_to(iiif.format("2004664004"))) == 2
    assert {i for i, r in _rows(out).items() if r["status"] == "downloaded"} == {
        "2004664001", "2004664002", "2004664003", "2004664004"}
    _assert_folder_is_whole(out)

    fake.faults, fake.log[:] = {}, []
    again = _fetch(fake, out, session=_session())
    assert again.exit_code == 0
    assert sorted(fake.requests_to("/item/")) == ["/item/2004664006/", "/item/2004664007/"]
    assert sorted(fake.requests_to("/iiif/")) == sorted(iiif.format(i) for i in ("2004664006", "2004664007"))
    _assert_folder_is_whole(out)


def test_a_long_retry_after_stops_the_run_with_a_clear_message(fake, tmp_path):
    out = tmp_path / "loc"
    fake.faults = {"/item/2004664003/": ["429:3600"]}
    report = _fetch(fake, out)
    assert report.exit_code == 1
    assert "asks to wait 3600 s" in report.payload["stopped"] and "rerun later" in report.payload["stopped"]
    assert report.payload["held"] == 2 and fake.requests_to("/item/2004664004/") == []
    _assert_folder_is_whole(out)
    assert _fetch(fake, out).payload["held"] == 6  # all but the restricted one


def test_a_server_that_keeps_failing_stops_the_run(fake, tmp_path):
    fake.faults = {"/collections/daguerreotypes/": ["always:500"]}
    report = _fetch(fake, tmp_path / "loc")
    assert report.exit_code == 1 and "HTTP 500 (gave up after 3 attempts)" in report.payload["stopped"]


def test_rate_limits_hold_by_the_servers_own_clock(fake, tmp_path):
    """Real time, small windows: the arrival times the server logged never crowd a window."""
    limits = {"any": (4, 0.4), "collection": (1, 0.3), "item": (2, 0.4)}
    report = _fetch(fake, tmp_path / "loc", session=_session(loc.Clock(), limits), per_page=2)
    assert report.exit_code == 0
    slack = 0.03  # arrival jitter of the loopback
    def crowded(times, count, seconds):
        return any(sum(s <= t < s + seconds - slack for t in times) > count for s in times)
    every = [t for t, _, _ in fake.log]
    pages = [t for t, path, _ in fake.log if path.startswith("/collections/")]
    items = [t for t, path, _ in fake.log if path.startswith("/item/")]
    assert len(every) == 4 + 7 + 6 and len(pages) == 4
    assert not crowded(every, 4, 0.4) and not crowded(pages, 1, 0.3) and not crowded(items, 2, 0.4)


def test_user_agent_is_descriptive(fake, tmp_path):
    session = _session()
    _fetch(fake, tmp_path / "loc", session=session, limit=1)
    assert session.session.headers["User-Agent"].startswith("old-photo-repair/")
    assert "restoring old photographs" in loc.USER_AGENT


# ---------------------------------------------------------------------------------------------- command line

def _cli(*args):
    environment = dict(os.environ, NO_PROXY="127.0.0.1", no_proxy="127.0.0.1")
    return subprocess.run([sys.executable, "-m", "helpers", "fetch-loc", *args], capture_output=True, text=True,
                          timeout=120, cwd=REPO, env=environment)


def test_cli_fetches_resumes_and_keeps_the_contract(fake, tmp_path):
    out = str(tmp_path / "loc")
    first = _cli("--out", out, "--api-base", fake.base, "--limit", "2", "--size", "64", "--json")
    assert first.returncode == 0, first.stderr
    doc = json.loads(first.stdout)
    assert doc["held"] == 2 and len(doc["new"]) == 2 and doc["failures"] == [] and doc["exit_code"] == 0
    again = json.loads(_cli("--out", out, "--api-base", fake.base, "--limit", "2", "--json").stdout)
    assert again["new"] == [] and again["held"] == 2

    for bad in (["--limit", "0"], ["--size", "-1"], ["--api-base", "loc.gov"]):
        result = _cli("--out", out, *bad)
        assert result.returncode == 2 and "Traceback" not in result.stderr, bad

    missing = _cli("--out", out, "--api-base", fake.base + "/nowhere", "--json")
    assert missing.returncode == 1 and "Traceback" not in missing.stderr
    assert "HTTP 404" in json.loads(missing.stdout)["stopped"]


def test_data_prep_script_is_the_same_command(fake, tmp_path, capsys):
    script = load_script("data_prep/fetch_loc.py")
    out = tmp_path / "loc"
    assert script.main(["--out", str(out), "--api-base", fake.base, "--limit", "1", "--size", "64", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["held"] == 1
    assert len(loc.downloaded_photos(out)) == 1


# ---------------------------------------------------------------------------------------------- offline stand-ins

def test_bundled_stand_ins_are_small_credited_and_labelled():
    photos = loc.bundled_samples()
    assert 6 <= len(photos) <= 8
    assert sum(p.stat().st_size for p in photos) < 1_500_000
    licenses = (env.samples_dir() / "LICENSES.md").read_text(encoding="utf-8")
    for path in photos:
        assert f"`{path.name}`" in licenses
        assert "collection unknown" not in loc.sample_credit(path)
    chosen, label = loc.photos_for_evaluation("unused", online=False)
    assert chosen == photos and "standing in for the daguerreotypes" in label
