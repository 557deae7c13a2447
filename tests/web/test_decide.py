"""POST /tp/v1/decide over HTTP, including every kind of bad input."""

from __future__ import annotations

import dataclasses

import pytest
from starlette.testclient import TestClient
from touchpoint.app import create_app
from touchpoint.errors import ConfigError
from touchpoint.render import popups
from touchpoint.settings import Settings

from ..conftest import PRODUCT


def decide(client: TestClient, path: str = PRODUCT, **kwargs):  # type: ignore[no-untyped-def]
    return client.post("/tp/v1/decide", json={"page": {"path": path}}, **kwargs)


def counts(client: TestClient) -> dict[str, int]:
    reader = client.app.state.tp.reader  # type: ignore[attr-defined]
    return {t: reader.count(t) for t in ("visitors", "events", "consent_log", "campaign_state")}


NOTHING = {"visitors": 0, "events": 0, "consent_log": 0, "campaign_state": 0}


def test_anonymous_visitor_gets_the_exit_intent_popup_on_a_product_page(client: TestClient) -> None:
    response = decide(client)
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    assert "set-cookie" not in response.headers
    body = response.json()
    banner = body["consent"].pop("banner")  # the built-in banner's texts, to ask for consent
    assert banner["lang"] == "en"
    assert body["consent"] == {
        "revision": 1,
        "granted": [],
        "prompt": True,
        "known": False,
        "mode": "builtin",
    }
    popup = body["popups"][0]
    assert popup["campaign"] == "first-order-coupon"
    assert popup["trigger"] == {
        "on": "exit_intent",
        "min_seconds": 1,
        "desktop": True,
        "mobile": True,
        "tab_return": True,
    }
    assert (popup["style"], popup["control"]) == ("modal", False)
    assert "WELCOME10" in popup["html"]
    assert body["css"] == popups.CSS  # the popups' stylesheet, once: the snippet carries none
    assert counts(client) == NOTHING


def test_no_popup_outside_the_audience(client: TestClient) -> None:
    answer = decide(client, "/demo/").json()
    assert answer["popups"] == []
    assert "css" not in answer  # no popup, no stylesheet
    assert decide(client, "/demo/products/a/b").json()["popups"] == []  # * stays in one segment


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"{not json", "malformed JSON at line 1 column 2"),
        (b"[1, 2]", "body must be a JSON object"),
        (b'"page"', "body must be a JSON object"),
        (b"{}", "page must be an object"),
        (b'{"page": "/demo/"}', "page must be an object"),
        (b'{"page": {"path": 42}}', "path must be a string"),
        (b'{"page": {"path": "demo"}}', "page.path must be a path starting with /"),
        (b'{"page": {"path": "/", "title": ["x"]}}', "title must be a string"),
        (b'{"page": "\xff"}', "not valid UTF-8"),
    ],
)
def test_bad_input_is_a_clear_400(client: TestClient, body: bytes, message: str) -> None:
    response = client.post("/tp/v1/decide", content=body)
    assert response.status_code == 400
    assert message in response.json()["error"]
    assert counts(client) == NOTHING


def test_overlong_path_is_refused(client: TestClient) -> None:
    response = decide(client, "/" + "a" * 3000)
    assert response.status_code == 400
    assert "longer than 2048" in response.json()["error"]


def test_body_over_the_limit_is_413(client: TestClient) -> None:
    huge = {"page": {"path": "/", "title": "x" * 20000}}
    response = client.post("/tp/v1/decide", json=huge)
    assert response.status_code == 413
    assert "larger than 16384 bytes" in response.json()["error"]


def test_body_over_the_limit_without_content_length_is_413(client: TestClient) -> None:
    def chunks():  # type: ignore[no-untyped-def]
        yield b'{"page": {"path": "/", "title": "'
        for _ in range(40):
            yield b"x" * 1000
        yield b'"}}'

    response = client.post("/tp/v1/decide", content=chunks())
    assert response.status_code == 413


@pytest.mark.parametrize(
    "cookie",
    [
        "forged",
        "dmlzaXRvcg.awSCnA.AAAAAAAAAAAAAAAAAAAAAAAAAAA",
        "x" * 500,
        "tp_vid=\u00e9t\u00e9; tp_vid=",
    ],
)
def test_forged_cookie_is_a_fresh_visitor(client: TestClient, cookie: str) -> None:
    header = cookie if cookie.startswith("tp_vid=") else f"tp_vid={cookie}"
    response = decide(client, headers={"Cookie": header.encode("latin-1")})
    assert response.status_code == 200
    assert response.json()["consent"]["prompt"] is True
    assert response.json()["popups"][0]["campaign"] == "first-order-coupon"
    assert counts(client) == NOTHING


def test_cookie_signed_with_another_key_is_ignored(client: TestClient, settings) -> None:  # type: ignore[no-untyped-def]
    from touchpoint.profiles.recognition import Recognizer

    other = Recognizer("another-key" * 4, cookie_name="tp_vid", max_age_days=1, secure="never")
    client.cookies.set("tp_vid", other.signer.sign("someone").decode())
    assert decide(client).json()["consent"]["prompt"] is True


def test_signed_cookie_of_an_unknown_visitor_is_expired(client: TestClient) -> None:
    signer = client.app.state.tp.recognizer.signer  # type: ignore[attr-defined]
    client.cookies.set("tp_vid", signer.sign("erased-visitor").decode())
    response = decide(client)
    assert response.status_code == 200
    assert 'tp_vid=""' in response.headers["set-cookie"]
    assert "Max-Age=0" in response.headers["set-cookie"]


def test_wrong_method_and_unknown_route_are_json_errors(client: TestClient) -> None:
    response = client.get("/tp/v1/decide")
    assert response.status_code == 405
    assert response.json() == {"error": "Method Not Allowed"}
    assert client.get("/tp/nope").status_code == 404


def test_rate_limit_per_client(tmp_path, rules_dir) -> None:  # type: ignore[no-untyped-def]
    from touchpoint.app import create_app
    from touchpoint.settings import Settings

    settings = Settings.load(
        {"data_dir": str(tmp_path), "rules_dir": str(rules_dir), "rate_limit_per_minute": 5},
        environ={},
    )
    with TestClient(create_app(settings)) as client:
        responses = [decide(client) for _ in range(7)]
    assert [r.status_code for r in responses] == [200] * 5 + [429] * 2
    # RFC 9110 10.2.3: when to come back; 5 a minute refill one every 12 s.
    assert [r.headers.get("retry-after") for r in responses[5:]] == ["12", "12"]


def test_the_rate_limiter_says_when_the_next_request_is_let_through() -> None:
    from touchpoint.errors import RateLimited
    from touchpoint.web.limits import RateLimiter

    limiter = RateLimiter(60)  # one a second
    for _ in range(60):
        limiter.check("client", now=0.0)
    with pytest.raises(RateLimited) as raised:
        limiter.check("client", now=0.25)
    assert raised.value.retry_after == 1


def test_expired_cookie_is_a_fresh_visitor(client: TestClient, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import time

    client.post("/tp/v1/consent", json={"granted": ["marketing"]})
    assert decide(client).json()["consent"]["prompt"] is False
    real = time.time
    monkeypatch.setattr(time, "time", lambda: real() + 396 * 86400)
    assert decide(client).json()["consent"]["prompt"] is True  # also when the value was cached


@pytest.mark.parametrize(
    "headers",
    [
        {"Sec-Fetch-Site": "cross-site"},
        {"Sec-Fetch-Site": "same-site"},
        {"Origin": "https://evil.example"},
        # An opaque origin (a sandboxed frame, a data: page) is no page of the site's own.
        {"Origin": "null"},
    ],
)
@pytest.mark.parametrize(
    "route",
    [
        "/tp/v1/decide",
        "/tp/v1/consent",
        "/tp/v1/events",
        "/tp/v1/identify",
        "/tp/v1/reset",
        "/tp/v1/eligible",
        "/tp/v1/coupons/reveal",
    ],
)
def test_cross_site_posts_are_refused(client: TestClient, headers, route: str) -> None:  # type: ignore[no-untyped-def]
    response = client.post(route, json={"granted": ["marketing"]}, headers=headers)
    assert response.status_code == 403
    assert response.json() == {"error": "cross-site requests are refused"}
    assert "set-cookie" not in response.headers
    assert counts(client) == NOTHING


def test_same_origin_posts_are_accepted(client: TestClient) -> None:
    for headers in ({"Sec-Fetch-Site": "same-origin"}, {"Origin": "http://testserver"}):
        assert decide(client, headers=headers).status_code == 200


def test_allowed_origins_get_credentialed_cors_and_others_are_refused(
    settings: Settings,
) -> None:
    settings = dataclasses.replace(settings, allowed_origins="https://www.shop.example")
    shop = {"Origin": "https://www.shop.example", "Sec-Fetch-Site": "same-site"}
    with TestClient(create_app(settings), base_url="https://tp.shop.example") as client:
        response = client.post("/tp/v1/consent", json={"granted": ["marketing"]}, headers=shop)
        assert response.status_code == 200
        assert response.headers["access-control-allow-origin"] == "https://www.shop.example"
        assert response.headers["access-control-allow-credentials"] == "true"
        assert "tp_vid=" in response.headers["set-cookie"]
        other = {"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"}
        response = client.post("/tp/v1/decide", json={"page": {"path": "/"}}, headers=other)
        assert response.status_code == 403
        assert "access-control-allow-origin" not in response.headers


@pytest.mark.parametrize("value", ["www.shop.example", "https://shop.example/path", "*"])
def test_allowed_origins_must_be_origins(settings: Settings, value: str) -> None:
    with pytest.raises(ConfigError, match="allowed_origins"):
        dataclasses.replace(settings, allowed_origins=value).validate()


def test_rate_limiter_keeps_limited_clients_under_an_address_flood() -> None:
    from touchpoint.errors import RateLimited
    from touchpoint.web.limits import RateLimiter

    limiter = RateLimiter(60)
    limiter.MAX_CLIENTS = 100
    for _ in range(60):
        limiter.check("attacker", now=0.0)
    for n in range(500):
        limiter.check(f"2001:db8::{n}", now=0.5)
    with pytest.raises(RateLimited):
        limiter.check("attacker", now=0.5)


def test_a_counted_page_view_is_logged_and_scored(rules_dir, client: TestClient) -> None:  # type: ignore[no-untyped-def]
    from .test_events import stored

    client.app.state.tp.now = lambda: 1_000_000  # type: ignore[attr-defined]
    client.post("/tp/v1/consent", json={"granted": ["personalisation"]})
    assert decide(client).json()["counted"] is True
    rows = stored(client, 1)
    assert [(r["type"], r["path"]) for r in rows] == [("page_view", PRODUCT)]


def test_with_measurement_alone_the_page_view_is_logged_without_a_profile(
    client: TestClient,
) -> None:
    from .test_events import stored

    client.post("/tp/v1/consent", json={"granted": ["measurement"]})
    assert decide(client).json()["counted"] is False
    assert [r["type"] for r in stored(client, 1)] == ["page_view"]
    reader = client.app.state.tp.reader  # type: ignore[attr-defined]
    assert reader.conn.execute("SELECT page_views, data FROM visitors").fetchone() == (0, "{}")


def test_audiences_see_the_decayed_score(rules_dir, settings: Settings) -> None:  # type: ignore[no-untyped-def]
    (rules_dir / "scoring.yaml").write_text(
        "points: [{id: visit, activity: page_view, points: 100}]\n"
        "decay: {half_life: 10d, after: 0}\n"
    )
    (rules_dir / "hot.yaml").write_text(
        "campaign: hot\nkind: content\nslot: hero\naudience: {visitor.score: {gte: 100}}\n"
        "variants: [{id: a, template: hero-interest.html}]\n"
    )
    with TestClient(create_app(settings)) as client:
        tp = client.app.state.tp  # type: ignore[attr-defined]
        tp.now = lambda: 1_000_000
        client.post("/tp/v1/consent", json={"granted": ["personalisation"]})

        def hero() -> dict:  # type: ignore[type-arg]
            response = client.post(
                "/tp/v1/decide", json={"page": {"path": "/"}, "slots": ["hero"], "count": False}
            )
            return response.json()["slots"]  # type: ignore[no-any-return]

        assert hero() == {}
        body = client.post("/tp/v1/decide", json={"page": {"path": "/"}, "slots": ["hero"]})
        assert body.json()["slots"]["hero"]["campaign"] == "hot"  # judged after the view: 100
        client.post("/tp/v1/consent", json={"granted": ["personalisation"]})  # waits for commit
        assert "hero" in hero()
        tp.now = lambda: 1_000_000 + 86400  # a day later the score has decayed below 100
        assert hero() == {}


def test_a_counted_page_view_that_arms_a_popup_is_one_writer_unit(client: TestClient) -> None:
    # The count and the rollups' "armed" count were two units: two savepoints, two queue hops.
    client.post("/tp/v1/consent", json={"granted": ["personalisation", "marketing"]})
    writer = client.app.state.tp.writer  # type: ignore[attr-defined]
    submitted = []
    real = writer.submit
    writer.submit = lambda unit: (submitted.append(unit), real(unit))[1]
    answer = decide(client).json()
    assert answer["counted"] is True and answer["popups"]
    assert len(submitted) == 1


def test_the_rate_limit_holds_across_workers(tmp_path, rules_dir) -> None:  # type: ignore[no-untyped-def]
    # Two workers each kept their own buckets: a client got the limit once per worker.
    from touchpoint.web.sharedlimit import table_path

    settings = Settings.load(
        {
            "data_dir": str(tmp_path),
            "rules_dir": str(rules_dir),
            "rate_limit_per_minute": 5,
            "workers": 2,
        },
        environ={},
    )
    try:
        with TestClient(create_app(settings)) as one, TestClient(create_app(settings)) as two:
            answers = [decide(client).status_code for _ in range(4) for client in (one, two)]
        assert answers == [200] * 5 + [429] * 3
    finally:
        table_path(settings.database_path).unlink(missing_ok=True)


def test_the_shared_rate_limit_refills_evicts_and_forgets() -> None:
    import tempfile
    from pathlib import Path

    from touchpoint.errors import RateLimited
    from touchpoint.web import sharedlimit

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "table"
        one, two = (sharedlimit.SharedRateLimiter(60, path) for _ in range(2))
        for n in range(60):
            (one, two)[n % 2].check("client", now=100.0)
        with pytest.raises(RateLimited) as refused:
            two.check("client", now=100.0)
        assert refused.value.headers == {"Retry-After": "1"}
        one.check("client", now=101.0)  # one a second comes back
        # A set full of other clients evicts the one with the most tokens, not the limited one.
        for n in range(sharedlimit.SETS * sharedlimit.WAYS // 100):
            one.check(f"2001:db8::{n}", now=101.5)
        with pytest.raises(RateLimited):
            one.check("client", now=101.5)
        one.sweep(0, 1, now=101.9)  # nothing has refilled yet: nothing forgotten
        with pytest.raises(RateLimited):
            two.check("client", now=101.9)
        two.sweep(0, 1, now=200.0)  # a minute later every bucket is full: all forgotten
        table = path.read_bytes()
        assert table[: sharedlimit.KEY] != bytes(sharedlimit.KEY)  # the hash key
        assert table[sharedlimit.HEADER :] == bytes(sharedlimit.SIZE - sharedlimit.HEADER)
        for limiter in (one, two):
            limiter.close()
