"""Hot reload: edits take effect without a restart; a broken edit keeps the last good rules."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import signal
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import httpx2 as httpx
import pytest
from starlette.testclient import TestClient
from touchpoint.app import create_app
from touchpoint.rules import folder
from touchpoint.rules.lastgood import LastGood
from touchpoint.rules.reloader import RulesReloader, start
from touchpoint.rules.ruleset import RulesError, Ruleset
from touchpoint.settings import Settings

from ..conftest import LiveServer
from ..web.test_decide import decide

SPRING = """\
campaign: spring
trigger: {after_seconds: 3}
priority: 50
variants:
  - {id: a, template: first-order-coupon.html}
"""


def eventually(check: Callable[[], bool], seconds: float = 5.0) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, "no reload within the deadline"
        time.sleep(0.05)


def test_edits_reload_and_a_broken_edit_keeps_the_last_good_rules(settings: Settings) -> None:
    rules_dir = Path(settings.rules_dir)
    with TestClient(create_app(settings)) as client:
        assert decide(client).json()["popups"][0]["campaign"] == "first-order-coupon"

        (rules_dir / "spring.yaml").write_text(SPRING)
        eventually(lambda: client.get("/tp/healthz").json()["campaigns"] == 2)
        assert decide(client).json()["popups"][0]["campaign"] == "spring"

        (rules_dir / "spring.yaml").write_text(
            SPRING.replace("after_seconds: 3", "after_seconds: x")
        )
        eventually(lambda: client.get("/tp/healthz").json()["status"] == "degraded")
        health = client.get("/tp/healthz")
        assert health.status_code == 200
        assert health.json()["rules_problems"] == [
            "spring.yaml:2:11: trigger.after_seconds: a number of seconds from 0 to 86400, e.g. 20"
        ]
        assert decide(client).json()["popups"][0]["campaign"] == "spring"  # still the last good set

        (rules_dir / "spring.yaml").unlink()
        eventually(lambda: client.get("/tp/healthz").json() == {"status": "ok", "campaigns": 1})
        assert decide(client).json()["popups"][0]["campaign"] == "first-order-coupon"


def test_template_edits_reload(settings: Settings) -> None:
    template = Path(settings.rules_dir) / "templates" / "first-order-coupon.html"
    with TestClient(create_app(settings)) as client:
        template.write_text("<h2>Spring is here</h2>\n")
        eventually(lambda: "Spring is here" in decide(client).json()["popups"][0]["html"])


def test_reload_can_be_turned_off(tmp_path: Path, rules_dir: Path) -> None:
    settings = Settings.load(
        {"data_dir": str(tmp_path), "rules_dir": str(rules_dir), "reload_rules": False}, environ={}
    )
    with TestClient(create_app(settings)) as client:
        (rules_dir / "spring.yaml").write_text(SPRING)
        time.sleep(1.2)
        assert client.get("/tp/healthz").json()["campaigns"] == 1


def test_scoring_and_lifecycle_edits_reload_and_a_broken_one_keeps_the_last_good(
    settings: Settings,
) -> None:
    rules_dir = Path(settings.rules_dir)
    with TestClient(create_app(settings)) as client:
        tp = client.app.state.tp  # type: ignore[attr-defined]
        assert tp.rules.profile.scoring.points == ()
        (rules_dir / "scoring.yaml").write_text(
            "points: [{id: visit, activity: page_view, points: 1}]\n"
        )
        eventually(lambda: len(tp.rules.profile.scoring.points) == 1)
        (rules_dir / "lifecycle.yaml").write_text("stages: [{stage: vip}]\n")
        eventually(lambda: client.get("/tp/healthz").json()["status"] == "degraded")
        assert client.get("/tp/healthz").json()["rules_problems"] == [
            "lifecycle.yaml:1:11: stages.0.stage: required: one of visitor, lead, new-customer,"
            " customer, inactive, win-back"
        ]
        assert tp.rules.profile.scoring.points[0].id == "visit"  # the last good set


# A coupon for visitors of /vip/ pages, its audience last: the first half of a write in place
# is a valid campaign that offers the coupon to everybody.
VIP = """\
campaign: vip
trigger: load
variants:
  - {id: a, template: first-order-coupon.html}
audience:
  page.path: /vip/*
"""
HALF = VIP[: VIP.index("audience:")]


def reloader(rules_dir: Path, data_dir: Path) -> tuple[RulesReloader, list[Ruleset]]:
    """A reloader polled by the test, and the rulesets it published."""
    last_good = LastGood(data_dir, rules_dir)
    applied: list[Ruleset] = []
    serving = start(rules_dir, last_good, interval=None)
    return RulesReloader(rules_dir, applied.append, serving, last_good), applied


def written_a_while_ago(path: Path, text: str) -> None:
    """Write ``path``, and date it and its neighbours a minute back: a folder that has held
    still for longer than a start waits."""
    path.write_text(text)
    past = time.time() - 60
    for each in path.parent.rglob("*"):
        os.utime(each, (past, past))


def poll(*reloaders: RulesReloader) -> None:
    for one in reloaders:
        asyncio.run(one.poll())


def test_a_change_is_published_once_the_folder_held_still_for_a_poll(
    rules_dir: Path, tmp_path: Path
) -> None:
    watcher, applied = reloader(rules_dir, tmp_path / "data")
    (rules_dir / "vip.yaml").write_text(HALF)
    poll(watcher)
    assert applied == []  # changed since the last poll: perhaps half written
    (rules_dir / "vip.yaml").write_text(VIP)
    poll(watcher)
    assert applied == []  # changed again
    poll(watcher)  # the same as a poll ago: loaded
    (published,) = applied
    assert published.by_id["vip"].paths == ("/vip/*",)
    poll(watcher)
    assert len(applied) == 1


def test_an_emptied_campaign_file_is_refused_and_rewriting_it_reloads_nothing(
    rules_dir: Path, tmp_path: Path
) -> None:
    watcher, applied = reloader(rules_dir, tmp_path / "data")
    path = rules_dir / "first-order-coupon.yaml"
    original = path.read_text()
    path.write_text("")
    poll(watcher, watcher)
    status = watcher.last_good.status()
    assert status is not None and not status.ok
    assert status.problems == (
        "first-order-coupon.yaml:1:1: the file is empty (or only comments): a campaign needs at"
        " least campaign: and variants:; delete the file to remove the campaign",
    )
    assert applied == []
    path.write_text(original)
    poll(watcher, watcher)
    status = watcher.last_good.status()
    assert status is not None and status.ok
    assert applied == []  # the set it serves: its templates' render cache stays


def test_a_worker_that_finds_the_folder_invalid_serves_the_set_another_accepted(
    rules_dir: Path, tmp_path: Path
) -> None:
    """Worker a takes a new set; by the time worker b looks, a broken edit followed: b serves
    what a accepted, not what it had, so both serve the same."""
    a, by_a = reloader(rules_dir, tmp_path / "data")
    b, by_b = reloader(rules_dir, tmp_path / "data")
    time.sleep(0.01)  # a later acceptance than the start
    (rules_dir / "vip.yaml").write_text(VIP)
    poll(a, a)
    assert [set(r.by_id) for r in by_a] == [{"first-order-coupon", "vip"}]
    (rules_dir / "vip.yaml").write_text(VIP.replace("trigger: load", "trigger: lod"))
    poll(b, b)
    assert [set(r.by_id) for r in by_b] == [{"first-order-coupon", "vip"}]
    source = by_b[0].by_id["vip"].source
    assert source == f"{rules_dir / 'vip.yaml'}:1"  # named as in the rules folder


def test_each_worker_says_which_set_it_serves_until_it_stops(
    rules_dir: Path, tmp_path: Path
) -> None:
    watcher, _ = reloader(rules_dir, tmp_path / "data")
    last_good = watcher.last_good
    started = watcher.digest

    async def run_until(check: Callable[[], bool]) -> None:
        task = asyncio.create_task(watcher.run())
        for _ in range(200):
            await asyncio.sleep(0.01)
            if check():
                break
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    watcher.interval = 0.01
    asyncio.run(run_until(lambda: bool(last_good.workers())))
    assert last_good.workers() == []  # withdrawn when it stopped
    (rules_dir / "vip.yaml").write_text(VIP)
    asyncio.run(run_until(lambda: watcher.digest != started))
    last_good.announce(watcher.digest, since=1.0)  # as the running worker left it
    (me,) = last_good.workers()
    assert (me.pid, me.digest) == (os.getpid(), watcher.digest) and me.digest != started
    # A worker killed without withdrawing: its record goes once its process is gone.
    ended = subprocess.Popen(["true"])
    ended.wait()
    last_good.announce(started, since=1.0, pid=ended.pid)
    assert [w.pid for w in last_good.workers()] == [os.getpid()]


def test_start_serves_the_last_good_set_while_the_folder_is_invalid(
    rules_dir: Path, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    written_a_while_ago(rules_dir / "vip.yaml", "")
    with pytest.raises(RulesError) as failed:  # nothing kept yet: the start fails as before
        start(rules_dir, LastGood(data, rules_dir))
    assert str(failed.value).startswith(f"{rules_dir / 'vip.yaml'}:1:1: the file is empty")
    written_a_while_ago(rules_dir / "vip.yaml", VIP)
    start(rules_dir, LastGood(data, rules_dir))
    written_a_while_ago(rules_dir / "vip.yaml", "")
    serving = start(rules_dir, LastGood(data, rules_dir))
    assert set(serving.ruleset.by_id) == {"first-order-coupon", "vip"}
    assert [str(p) for p in serving.problems] == [
        f"{rules_dir / 'vip.yaml'}:1:1: the file is empty (or only comments): a campaign needs"
        " at least campaign: and variants:; delete the file to remove the campaign"
    ]
    # A damaged copy is not served: the start fails as without one.
    saved = LastGood(data, rules_dir).saved()
    assert saved is not None
    (saved.path / "vip.yaml").write_text(HALF)
    with pytest.raises(RulesError):
        start(rules_dir, LastGood(data, rules_dir))


def test_a_start_in_the_middle_of_a_write_in_place_waits_for_the_whole_file(
    rules_dir: Path, tmp_path: Path
) -> None:
    """A worker (re)started while a file is being written does not take the first half."""
    last_good = LastGood(tmp_path / "data", rules_dir)
    start(rules_dir, last_good, interval=None)
    (rules_dir / "vip.yaml").write_text(HALF)
    rest = threading.Timer(0.3, lambda: (rules_dir / "vip.yaml").write_text(VIP))
    rest.start()
    serving = start(rules_dir, last_good, interval=0.5)
    rest.join()
    assert serving.ruleset.by_id["vip"].paths == ("/vip/*",)
    assert serving.signature == folder.signature(rules_dir)


def test_a_worker_started_while_the_folder_is_invalid_serves_the_last_good_set(
    settings: Settings,
) -> None:
    rules_dir = Path(settings.rules_dir)
    with TestClient(create_app(settings)) as client:
        assert decide(client).json()["popups"][0]["campaign"] == "first-order-coupon"
    written_a_while_ago(rules_dir / "first-order-coupon.yaml", "# being rewritten\n")
    with TestClient(create_app(settings)) as client:
        assert decide(client).json()["popups"][0]["campaign"] == "first-order-coupon"
        health = client.get("/tp/healthz").json()
        assert health["status"] == "degraded"
        assert health["rules_problems"] == [
            "first-order-coupon.yaml:1:1: the file is empty (or only comments): a campaign"
            " needs at least campaign: and variants:; delete the file to remove the campaign"
        ]


def workers(server: LiveServer) -> set[int]:
    """The pids of the server's uvicorn workers (spawned children, not the resource tracker)."""
    pid = server.process.pid
    found = set()
    for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split():
        try:
            if b"spawn_main" in Path(f"/proc/{child}/cmdline").read_bytes():
                found.add(int(child))
        except OSError:  # gone meanwhile
            continue
    return found


def vip_server(tmp_path: Path, rules_dir: Path, *, write: bool = True) -> LiveServer:
    """Two workers serving ``rules_dir`` with the vip campaign (written unless ``write`` is
    false), their data in ``tmp_path/live-data``."""
    if write:
        (rules_dir / "vip.yaml").write_text(VIP)
    return LiveServer(
        tmp_path, "--workers=2", "--rules-dir", str(rules_dir), "--rate-limit-per-minute=1000000"
    )


def live_campaigns(client: httpx.Client, path: str) -> set[str]:
    answer = client.post("/tp/v1/decide", json={"page": {"path": path}})
    assert answer.status_code == 200, answer.text
    return {p["campaign"] for p in answer.json()["popups"]}


@pytest.mark.slow
def test_two_workers_never_serve_a_campaign_file_written_in_place_half_done(
    tmp_path: Path, rules_dir: Path
) -> None:
    """A campaign file truncated and written again in two steps, as an editor saving in place
    or rsync --inplace does, over and over, while clients ask both workers all the time: the
    coupon never shows without its audience, never goes missing, and healthz never changes."""
    server = vip_server(tmp_path, rules_dir)
    path = rules_dir / "vip.yaml"
    stop = threading.Event()
    wrong: list[str] = []
    health: Counter[str] = Counter()

    def ask() -> None:
        # No keep-alive: every request a new connection, taken by either worker.
        limits = httpx.Limits(max_keepalive_connections=0)
        with httpx.Client(base_url=server.url, limits=limits) as client:
            while not stop.is_set():
                if "vip" in live_campaigns(client, "/"):
                    wrong.append("the vip coupon shown without its audience")
                if "vip" not in live_campaigns(client, "/vip/lounge"):
                    wrong.append("the vip campaign missing")
                health[client.get("/tp/healthz").text] += 1

    askers = [threading.Thread(target=ask) for _ in range(3)]
    try:
        for asker in askers:
            asker.start()
        for _ in range(12):
            with path.open("r+") as file:  # in place: the same inode all along
                file.truncate(0)
                file.flush()
                time.sleep(0.05)
                file.write(HALF)
                file.flush()
                time.sleep(0.15)  # well within a poll interval, even on a busy machine
                file.write(VIP[len(HALF) :])
            time.sleep(random.uniform(0, 0.8))
    finally:
        stop.set()
        for asker in askers:
            asker.join()
        output = server.output()
    assert wrong == [], output
    assert list(health) == ['{"status":"ok","campaigns":2}'], output
    assert sum(health.values()) > 50


@pytest.mark.slow
def test_workers_restarted_while_the_folder_is_invalid_serve_the_last_good_set(
    tmp_path: Path, rules_dir: Path
) -> None:
    """Both workers die and uvicorn starts new ones while a campaign file is empty: they serve
    the last good set the first workers accepted, and say the same in healthz."""
    server = vip_server(tmp_path, rules_dir)
    try:
        (rules_dir / "vip.yaml").write_text("")
        eventually(lambda: httpx.get(server.url + "/tp/healthz").json()["status"] == "degraded")
        first = workers(server)
        for pid in first:
            os.kill(pid, signal.SIGKILL)
            time.sleep(0.2)
        eventually(lambda: len(workers(server) - first) == 2, seconds=20)
        limits = httpx.Limits(max_keepalive_connections=0)
        with httpx.Client(base_url=server.url, limits=limits) as client:
            eventually(lambda: client.get("/tp/healthz").status_code == 200, seconds=20)
            answers = set()
            for _ in range(20):
                assert live_campaigns(client, "/vip/lounge") == {"vip"}
                assert live_campaigns(client, "/") == set()
                answers.add(client.get("/tp/healthz").text)
    finally:
        output = server.output()
    (answer,) = answers
    assert json.loads(answer) == {
        "status": "degraded",
        "campaigns": 2,
        "rules_problems": [
            "vip.yaml:1:1: the file is empty (or only comments): a campaign needs at least"
            " campaign: and variants:; delete the file to remove the campaign"
        ],
        "rules_refused_at": json.loads(answer)["rules_refused_at"],
    }, output


@pytest.mark.slow
def test_serve_started_again_while_the_folder_is_invalid_serves_the_last_good_set(
    tmp_path: Path, rules_dir: Path
) -> None:
    """A restart (a deploy, a reboot) while a campaign file is broken: the server starts with
    the rules it last accepted, prints the problems and reports degraded."""
    first = vip_server(tmp_path, rules_dir)
    first.stop()
    written_a_while_ago(rules_dir / "vip.yaml", VIP.replace("trigger: load", "trigger: lod"))
    second = vip_server(tmp_path, rules_dir, write=False)
    try:
        with httpx.Client(base_url=second.url) as client:
            assert live_campaigns(client, "/vip/lounge") == {"vip"}
            assert client.get("/tp/healthz").json()["status"] == "degraded"
    finally:
        output = second.output()
    assert "vip.yaml:2:1: trigger: exactly one of" in output
    assert "serving the last good rules, accepted " in output
