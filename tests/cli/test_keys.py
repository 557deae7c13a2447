"""touchpoint apikey: keys go where the server reads them, or nowhere."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from touchpoint.api.keys import ApiKeys
from touchpoint.cli import main

SCOPE = ["--scope", "events:write"]


@pytest.mark.parametrize("action", [["create", "shop", *SCOPE], ["list"], ["revoke", "shop"]])
def test_outside_the_servers_folder_nothing_is_written(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    action: list[str],
) -> None:
    monkeypatch.chdir(tmp_path)  # not the project folder: there is no ./data
    monkeypatch.delenv("TOUCHPOINT_DATA_DIR", raising=False)
    monkeypatch.delenv("TOUCHPOINT_API_KEYS_FILE", raising=False)
    assert main(["apikey", *action]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"touchpoint: no folder {tmp_path / 'data'}, so no server reads keys")
    assert "pass the server's --data-dir" in err
    assert not (tmp_path / "data").exists()
    elsewhere = tmp_path / "nowhere" / "keys.json"
    assert main(["apikey", *action, "--api-keys-file", str(elsewhere)]) == 1
    assert "pass the server's --api-keys-file" in capsys.readouterr().err
    assert not elsewhere.parent.exists()


def test_the_data_dir_after_the_action_and_where_the_key_went(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "data"
    data.mkdir()
    assert main(["apikey", "create", "shop", *SCOPE, "--data-dir", str(data)]) == 0
    out, err = capsys.readouterr()
    key_file = data / "api_keys.json"
    assert err == f"key shop created in {key_file}; the token is shown only now\n"
    key = ApiKeys(key_file).authenticate(out.strip())
    assert key is not None and key.scopes == ("events:write",)


def test_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "data"
    data.mkdir()
    where = ["--data-dir", str(data)]
    assert main(["apikey", "create", "crm", *SCOPE, *where, "--json"]) == 0
    created = json.loads(capsys.readouterr().out)
    assert created.keys() == {"name", "scopes", "token", "file"}
    assert (created["name"], created["scopes"]) == ("crm", ["events:write"])
    assert main(["--json", "apikey", *where, "list"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [k["name"] for k in listed["keys"]] == ["crm"]
    assert listed["file"] == str(data / "api_keys.json")
    assert main(["apikey", "revoke", "crm", *where, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["revoked"] is True
