"""Mosquitto's password and ACL files (pure), checked against mosquitto_passwd itself, and the
broker configuration the stack writes around them (plugin, autosave)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from launcher.localstack import AUTH_PLUGIN_DIR, AUTOSAVE_INTERVAL_S, MosquittoBroker, auth_plugin
from security.mosquitto import (
    ServiceAccount,
    acl_file,
    check_topic_root,
    mosquitto_hash,
    password_file,
    valid_username,
    verify_mosquitto_hash,
    write_private,
)


def test_our_hash_is_what_mosquitto_passwd_writes(tmp_path: Path) -> None:
    binary = shutil.which("mosquitto_passwd")
    assert binary, "mosquitto_passwd comes with Mosquitto (make setup)"
    pw = tmp_path / "pw"
    subprocess.run([binary, "-b", "-c", str(pw), "LOG-1", "s3cret"], check=True)
    theirs = pw.read_text().strip().split(":", 1)[1]
    assert theirs.startswith("$7$")
    assert verify_mosquitto_hash(theirs, "s3cret")
    assert not verify_mosquitto_hash(theirs, "s3cret!")
    salt = __import__("base64").b64decode(theirs.split("$")[3])
    assert mosquitto_hash("s3cret", salt=salt, iterations=int(theirs.split("$")[2])) == theirs
    assert not verify_mosquitto_hash("$6$rounds", "x")


def test_password_file_is_sorted_and_refuses_bad_names() -> None:
    text = password_file([("LOG-2", "$7$b"), ("LOG-1", "$7$a")])
    assert text == "LOG-1:$7$a\nLOG-2:$7$b\n"
    with pytest.raises(ValueError, match="user name"):
        password_file([("LOG:1", "$7$a")])
    assert valid_username("DEMO-LOG-0001") and not valid_username("a:b")
    assert not valid_username("a/b") and not valid_username("+") and not valid_username("")


def test_acl_lets_each_logger_write_its_own_topics_only() -> None:
    text = acl_file(
        "acme/v1",
        [
            ServiceAccount("coldchain-sim", "simulator"),
            ServiceAccount("coldchain-ingest", "ingest"),
        ],
    )
    lines = text.splitlines()
    assert "pattern write acme/v1/devices/%u/telemetry" in lines
    assert "pattern write acme/v1/devices/%u/status" in lines
    ingest = lines.index("user coldchain-ingest")
    assert lines[ingest + 1 : ingest + 3] == [
        "topic read acme/v1/devices/+/telemetry",
        "topic read acme/v1/devices/+/status",
    ]
    sim = lines.index("user coldchain-sim")
    assert "topic write acme/v1/devices/+/telemetry" in lines[sim:]
    assert not any(line.startswith("topic") and "#" in line for line in lines[:sim])
    with pytest.raises(ValueError, match="topic root"):
        check_topic_root("acme/+/v1")
    with pytest.raises(ValueError, match="topic root"):
        acl_file("acme//v1", [])


def test_private_files_are_owner_only(tmp_path: Path) -> None:
    path = write_private(tmp_path / "sub" / "passwd", "x\n")
    assert path.read_text() == "x\n"
    assert path.stat().st_mode & 0o777 == 0o600
    write_private(path, "y\n")
    assert path.read_text() == "y\n" and list(path.parent.iterdir()) == [path]


def test_every_broker_saves_as_often_as_the_protocol_page_says(tmp_path: Path) -> None:
    """The local stack, the test fixtures' brokers and Docker Compose's broker share one autosave
    interval, the one docs/PROTOCOL.md gives as the crash window."""
    root = Path(__file__).resolve().parents[2]
    conf = (root / "deploy" / "mosquitto.conf").read_text()
    assert f"\nautosave_interval {AUTOSAVE_INTERVAL_S}\n" in conf
    assert "autosave_on_changes" not in conf  # seconds, not changes
    local = MosquittoBroker(tmp_path / "b", 1883)
    local.write_config()
    assert f"\nautosave_interval {AUTOSAVE_INTERVAL_S}\n" in local.config_file.read_text()
    protocol = (root / "docs" / "PROTOCOL.md").read_text()
    assert f"`autosave_interval` = {AUTOSAVE_INTERVAL_S} s" in protocol


def test_the_plugin_comes_with_the_password_file_and_the_acl(tmp_path: Path) -> None:
    plain = MosquittoBroker(tmp_path / "anonymous", 1883)
    plain.write_config()
    assert not any(line.startswith("plugin") for line in plain.config_file.read_text().splitlines())
    secured = MosquittoBroker(
        tmp_path / "secured",
        1883,
        password_file=tmp_path / "passwd",
        acl_file=tmp_path / "acl",
        subscribers=("coldchain-ingest", "coldchain-sim"),
    )
    secured.write_config()
    lines = secured.config_file.read_text().splitlines()
    assert f"plugin {auth_plugin()}" in lines
    assert "plugin_opt_subscribers coldchain-ingest,coldchain-sim" in lines
    assert auth_plugin().stat().st_mtime >= (AUTH_PLUGIN_DIR / "coldchain_auth.c").stat().st_mtime
