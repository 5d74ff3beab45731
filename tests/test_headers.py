"""Fail-closed defaults and protective headers.

DEBUG is off unless the environment turns it on, and without its secrets the site refuses to
start with one line. Every page carries a Content-Security-Policy allowing only the site's own
files, and every page that shows account data is sent with `Cache-Control: no-store`.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from dotenv import dotenv_values

REPO = Path(__file__).resolve().parent.parent


# --- Fail-closed defaults ----------------------------------------------------------------------


def clean_env(**env: str) -> dict[str, str]:
    """The test process's environment without the site's settings, plus `env`.

    DEBUG, SECRET_KEY and CUSTODIAN_ENCRYPTION_KEYS are set empty rather than removed: an empty
    value counts as unset in the settings, and it keeps a developer's `.env` from filling them.
    """
    base = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DJANGO_", "DEBUG", "DATABASE", "SECRET_KEY", "CUSTODIAN_"))
    }
    return {**base, "DEBUG": "", "SECRET_KEY": "", "CUSTODIAN_ENCRYPTION_KEYS": "", **env}


def run_python(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=60
    )


def test_debug_is_off_when_unset():
    env = clean_env(
        SECRET_KEY="x7#k2!" + "p9q" * 20,
        CUSTODIAN_ENCRYPTION_KEYS=Fernet.generate_key().decode(),
        DJANGO_SETTINGS_MODULE="site_config.settings",
    )
    program = "import django; django.setup(); from django.conf import settings as s; print(s.DEBUG)"
    result = run_python("-c", program, env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"


@pytest.mark.parametrize(
    ("command", "missing"),
    [
        (["manage.py", "check"], "SECRET_KEY"),
        (["manage.py", "runserver", "--noreload", "127.0.0.1:0"], "SECRET_KEY"),
        (["-c", "import site_config.wsgi"], "SECRET_KEY"),
        (["-c", "import site_config.asgi"], "SECRET_KEY"),
        (["manage.py", "check"], "CUSTODIAN_ENCRYPTION_KEYS"),
    ],
    ids=["check", "runserver", "wsgi", "asgi", "check-no-keys"],
)
def test_without_debug_and_secrets_the_site_refuses_to_start_in_one_line(command, missing):
    env = clean_env()
    if missing != "SECRET_KEY":
        env["SECRET_KEY"] = "x7#k2!" + "p9q" * 20
    result = run_python(*command, env=env)

    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("Custodian cannot start:"), lines
    assert f"{missing} must be set when DEBUG is off" in lines[0]
    assert ".env.example" in lines[0]


def test_env_example_turns_debug_on_and_sets_nothing_else():
    """`cp .env.example .env` gives a development site; secrets are examples, commented out."""
    values = dotenv_values(REPO / ".env.example")
    assert values == {"DEBUG": "true"}
    text = (REPO / ".env.example").read_text()
    for name in ("SECRET_KEY", "CUSTODIAN_ENCRYPTION_KEYS", "DATABASE_URL", "LOG_LEVEL"):
        assert f"# {name}=" in text, name


def test_env_file_is_not_committed():
    result = subprocess.run(
        ["git", "check-ignore", "-q", ".env"], cwd=REPO, capture_output=True, timeout=30
    )
    assert result.returncode == 0, ".env must be git-ignored"


def test_make_targets_turn_debug_on(tmp_path):
    """`make run`, `make test` (and so .ci/run) and `make bench` see DEBUG=true."""
    probe = tmp_path / "probe.mk"
    probe.write_text("probe:\n\t@echo DEBUG=$$DEBUG\n")
    env = {key: value for key, value in os.environ.items() if key != "DEBUG"}
    result = subprocess.run(
        ["make", "--no-print-directory", "-f", "Makefile", "-f", str(probe), "probe"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=30,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "DEBUG=true"
