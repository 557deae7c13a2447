"""Standard Webhooks signatures: the specification's test vector, the official Python library
verifying what we sign (any body, any idempotency key, during a secret's replacement), and the
secrets no library could use refused with file and line at `touchpoint check` and at start."""

from __future__ import annotations

import base64
import time
from pathlib import Path
from typing import Any

import pytest
import standardwebhooks
from hypothesis import given
from hypothesis import strategies as st
from touchpoint import cli
from touchpoint.webhooks import signing

from .test_delivery import SECRET

# The test vector of the Standard Webhooks libraries (libraries/*/tests in
# github.com/standard-webhooks/standard-webhooks): secret, id, timestamp, body -> signature.
VECTOR_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
VECTOR_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
VECTOR_TIMESTAMP = 1614265330
VECTOR_BODY = b'{"test": 2432232314}'
VECTOR_SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def secret_of(n: int) -> str:
    return "whsec_" + base64.b64encode(bytes(range(n))).decode()


def test_the_specifications_test_vector() -> None:
    keys = signing.keys(VECTOR_SECRET)
    assert signing.signature(keys, VECTOR_ID, VECTOR_TIMESTAMP, VECTOR_BODY) == VECTOR_SIGNATURE


@given(key=st.text(min_size=1, max_size=200), body=st.text(max_size=2000))
def test_the_official_library_verifies_any_body_under_any_idempotency_key(
    key: str, body: str
) -> None:
    """Idempotency keys hold full stops (``score.threshold:…``), which the signed content
    separates its parts with: the webhook-id derived from them never does."""
    msg_id = signing.message_id(key)
    assert msg_id == signing.message_id(key) and "." not in msg_id
    raw = body.encode()
    headers = signing.headers(signing.keys(SECRET), msg_id, int(time.time()), raw)
    standardwebhooks.Webhook(SECRET).verify(raw, headers, json_parse=False)
    with pytest.raises(standardwebhooks.webhooks.WebhookVerificationError):
        standardwebhooks.Webhook(signing.generate_secret()).verify(raw, headers, json_parse=False)
    with pytest.raises(standardwebhooks.webhooks.WebhookVerificationError):
        standardwebhooks.Webhook(SECRET).verify(raw + b" ", headers, json_parse=False)


def test_a_recorded_request_replayed_later_is_refused_by_the_library() -> None:
    body = b'{"id":"msg_1"}'
    old = signing.headers(signing.keys(SECRET), "msg_1", int(time.time()) - 301, body)
    with pytest.raises(standardwebhooks.webhooks.WebhookVerificationError, match="too old"):
        standardwebhooks.Webhook(SECRET).verify(body, old)


def test_during_a_replacement_both_secrets_sign_and_either_verifies() -> None:
    new = signing.generate_secret()
    keys = signing.keys(f"{new}  {SECRET}")
    headers = signing.headers(keys, "msg_2", int(time.time()), b"{}")
    assert len(headers["webhook-signature"].split(" ")) == 2
    for secret in (new, SECRET):
        assert standardwebhooks.Webhook(secret).verify(b"{}", headers) == {}


def test_generated_secrets_are_standard_and_distinct() -> None:
    made = {signing.generate_secret() for _ in range(20)}
    assert len(made) == 20
    for secret in made:
        assert len(signing.keys(secret)[0]) == 32
        assert standardwebhooks.Webhook(secret)  # the library reads it too


@pytest.mark.parametrize(
    ("secret", "why"),
    [
        ("a-long-random-string", "must start with whsec_"),  # a secret of the old scheme
        ("s3cret", "must start with whsec_"),
        ("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "must start with whsec_"),  # no prefix
        ("whsec_", "not standard base64"),
        ("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaS", "not standard base64"),  # padding missing
        ("whsec_3Vb0VqW2lOqJ4e8p0oNn1bKX5m9Ew7Rk6yTzq2HfJcA", "not standard base64"),
        ("whsec_3Vb0VqW2lOqJ4e8p0oNn1bKX5m9Ew7Rk6yTzq2Hf-_A=", "not standard base64"),  # url
        ("whsec_3Vb0VqW2lOqJ4e8p 0oNn1bKX5m9Ew7Rk6yTzq2HfJcA=", "of 12 bytes"),  # a space
        (secret_of(16), "of 16 bytes"),
        (secret_of(23), "of 23 bytes"),
        (secret_of(65), "of 65 bytes"),
        ("   ", "is empty"),
    ],
)
def test_secrets_no_library_could_use_are_refused(secret: str, why: str) -> None:
    with pytest.raises(ValueError, match=why):
        signing.keys(secret)


@pytest.mark.parametrize("n", [24, 32, 64])
def test_secrets_of_24_to_64_bytes_are_taken(n: int) -> None:
    assert signing.keys(secret_of(n)) == (bytes(range(n)),)


SITE = (
    "timezone: Europe/Berlin\n"
    "webhooks:\n"
    "  sales:\n"
    "    url: https://crm.example/hook\n"
    "    secret_env: SALES_SECRET\n"
)


def test_check_and_start_refuse_an_old_secret_with_file_and_line(
    rules_dir: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    (rules_dir / "site.yaml").write_text(SITE)
    monkeypatch.setenv("SALES_SECRET", "a-long-random-string")
    assert cli.main(["check", "--rules-dir", str(rules_dir)]) == 1
    err = capsys.readouterr().err
    where = f"{rules_dir}/site.yaml:5:5: webhooks.sales.secret_env: SALES_SECRET is not a "
    assert where + "Standard Webhooks secret: it must start with whsec_" in err
    assert "touchpoint webhooks secret" in err and "a-long-random-string" not in err
    argv = ["serve", "--rules-dir", str(rules_dir), "--data-dir", str(tmp_path / "data")]
    assert cli.main(argv) == 1
    err = capsys.readouterr().err
    assert where in err and "a-long-random-string" not in err
    monkeypatch.setenv("SALES_SECRET", signing.generate_secret())
    assert cli.main(["check", "--rules-dir", str(rules_dir)]) == 0


def test_the_secret_command_prints_a_secret_the_library_takes(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert cli.main(["webhooks", "secret"]) == 0
    secret = capsys.readouterr().out.strip()
    assert secret.startswith("whsec_") and len(signing.keys(secret)[0]) == 32
    standardwebhooks.Webhook(secret)


def test_the_documented_python_receiver_works() -> None:
    """docs/webhooks.md shows receivers how to verify; its Python really does it."""
    text = (Path(__file__).parent.parent.parent / "docs" / "webhooks.md").read_text()
    code = text.split("```python\n", 1)[1].split("```", 1)[0]
    namespace: dict[str, Any] = {}
    exec(code, namespace)
    body = b'{"id":"msg_3","event":"stage.changed"}'
    headers = signing.headers(signing.keys(SECRET), "msg_3", int(time.time()), body)
    assert namespace["verified_event"](SECRET, body, headers)["event"] == "stage.changed"
    assert namespace["verified_event"](SECRET, body + b" ", headers) is None
