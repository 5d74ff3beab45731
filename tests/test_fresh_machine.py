"""`make setup` on a fresh machine installs Debian's chromium for the browser tests when it can;
where it cannot, each browser test fails with one line that says what to run.

The Makefile's recipe runs for real, with `apt-get`, `id` and `sudo` replaced by small scripts
on PATH (nothing here installs or removes a package, or reaches the network); the one-line
failure is what pytest itself prints for the real browser test, run in a subprocess against a
chromium path that does not exist.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.browser import missing_chromium

ROOT = Path(__file__).resolve().parent.parent
# What an outer make, pytest or xdist run, or the machine's shell, would pass on.
NOT_INHERITED = {"MAKEFLAGS", "MFLAGS", "MAKELEVEL", "CHROMIUM", "DATABASE_URL", "DEBIAN_FRONTEND"}
HINT = (
    "Debian's chromium is missing: run \"sudo apt-get install -y chromium\" "
    "(or make setup as root)"
)


def _clean_env(**extra: str) -> dict[str, str]:
    """This environment without NOT_INHERITED and pytest's own variables."""
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in NOT_INHERITED and not key.startswith(("PYTEST_", "CUSTODIAN_TEST_"))
    }
    env.update(extra)
    return env


# --- the browser tests' one line ----------------------------------------------------------


def test_missing_chromium_is_one_line_naming_the_command(tmp_path):
    not_runnable = tmp_path / "chromium"
    not_runnable.write_text("#!/bin/sh\n")

    assert missing_chromium("/usr/bin/chromium") in (None, HINT)
    assert missing_chromium(sys.executable) is None
    for path in (tmp_path / "nowhere", not_runnable, tmp_path):
        message = missing_chromium(str(path))
        assert message is not None and "\n" not in message
        assert f"(no {path})" in message and '"sudo apt-get install -y chromium"' in message


def test_browser_tests_fail_with_one_line_and_no_stack_trace_without_chromium(tmp_path):
    missing = tmp_path / "no-chromium-here"
    result = subprocess.run(
        [
            sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:xdist",
            "tests/test_journey_browser.py", "tests/test_admin_browser.py",
        ],
        cwd=ROOT,
        env=_clean_env(
            CUSTODIAN_TEST_CHROMIUM=str(missing),
            SQLITE_TEST_PATH=str(tmp_path / "test.sqlite3"),
        ),
        capture_output=True,
        text=True,
        timeout=300,
    )
    output = result.stdout + result.stderr

    assert result.returncode == 1, output
    assert re.search(r"\b2 errors? in ", output), output  # failed, never skipped
    assert "skipped" not in output and "passed" not in output, output
    hint = (
        f"Debian's chromium is missing (no {missing}): "
        'run "sudo apt-get install -y chromium" (or make setup as root)'
    )
    # Each test's report is its header and that one line: no traceback, nothing of Playwright.
    sections = re.findall(r"_{3,} ERROR at setup of (\S+) _{3,}\n(.*?)\n(?=_{3,}|={3,})",
                          output, re.S)
    assert [name for name, _ in sections] == [
        "test_whole_journey", "test_list_and_change_page_in_a_browser"
    ], output
    assert all(body == hint for _, body in sections), output
    assert "Traceback" not in output and "playwright" not in output.lower(), output


# --- make setup ---------------------------------------------------------------------------

FAKE_APT_GET = """#!/bin/sh
# Records each call; "install" fails until "update" has fetched the lists, as on a fresh
# machine, unless told to fail always.
echo "${SUDO_MARK:-}$* DEBIAN_FRONTEND=${DEBIAN_FRONTEND:-}" >> "$FAKE_LOG"
case "$1" in
  update) touch "$FAKE_LISTS"; echo "Reading package lists..." ;;
  install)
    if [ -e "$FAKE_LISTS" ] && [ -z "$FAKE_BROKEN" ]; then
      echo "Setting up chromium ..."; printf '#!/bin/sh\\n' > "$FAKE_TARGET"
      chmod +x "$FAKE_TARGET"
    else
      echo "E: Unable to locate package chromium" >&2; exit 100
    fi ;;
esac
"""
FAKE_SUDO = """#!/bin/sh
# Passwordless when FAKE_SUDO_OK is set; otherwise it would ask for a password, so -n fails.
[ -n "$FAKE_SUDO_OK" ] || { echo "sudo: a password is required" >&2; exit 1; }
[ "$1" = "-n" ] && shift
SUDO_MARK="sudo " exec "$@"
"""


class FakeMachine:
    """A PATH with recording `apt-get`, `id` and `sudo`, and a chromium path in a temp dir."""

    def __init__(self, tmp_path: Path, *, uid: int) -> None:
        self.bin = tmp_path / "bin"
        self.bin.mkdir()
        self.chromium = tmp_path / "usr-bin-chromium"
        self.log = tmp_path / "apt.log"
        self.lists = tmp_path / "lists"
        for name, script in (
            ("apt-get", FAKE_APT_GET),
            ("sudo", FAKE_SUDO),
            ("id", f'#!/bin/sh\n[ "$1" = "-u" ] && echo {uid}\n'),
        ):
            (self.bin / name).write_text(script)
            (self.bin / name).chmod(0o755)

    def make(self, *, sudo_ok: bool = False, broken: bool = False):
        env = _clean_env(
            PATH=f"{self.bin}:{os.environ['PATH']}",
            FAKE_LOG=str(self.log),
            FAKE_LISTS=str(self.lists),
            FAKE_TARGET=str(self.chromium),
            FAKE_SUDO_OK="1" if sudo_ok else "",
            FAKE_BROKEN="1" if broken else "",
        )
        return subprocess.run(
            ["make", "-s", "--no-print-directory", "chromium", f"CHROMIUM={self.chromium}"],
            cwd=ROOT, env=env, capture_output=True, text=True, timeout=60,
        )

    def calls(self) -> list[str]:
        return self.log.read_text().splitlines() if self.log.exists() else []


def make_n(target: str) -> str:
    """What `make -n target` would run (a dry run: nothing is installed)."""
    result = subprocess.run(
        ["make", "-n", "--no-print-directory", target, "CHROMIUM=/nowhere/chromium"],
        cwd=ROOT, env=_clean_env(), capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.mark.parametrize("target", ["setup", "test"])
def test_make_n_shows_apt_get_guarded_by_the_missing_binary(target):
    script = make_n(target)

    guard = script.index('if [ ! -x "/nowhere/chromium" ]; then')
    install = script.index("apt-get install -y -qq chromium")
    update = script.index("apt-get update -qq")
    assert guard < install < update < script.index("\nfi", update)
    assert HINT.replace('"', '\\"') in script


@pytest.mark.parametrize("target", ["lint", "run"])
def test_targets_that_need_no_browser_leave_chromium_alone(target):
    assert "chromium" not in make_n(target)


def test_setup_as_root_installs_chromium_fetching_the_lists_when_missing(tmp_path):
    machine = FakeMachine(tmp_path, uid=0)

    result = machine.make()

    assert result.returncode == 0, result.stderr
    assert machine.calls() == [
        "install -y -qq chromium DEBIAN_FRONTEND=noninteractive",
        "update -qq DEBIAN_FRONTEND=",
        "install -y -qq chromium DEBIAN_FRONTEND=noninteractive",
    ]
    assert os.access(machine.chromium, os.X_OK)
    # Quiet: one line of its own; apt's progress and the first attempt's error are not shown.
    assert result.stdout == "Installing Debian's chromium for the browser tests\n"
    assert result.stderr == ""

    again = machine.make()  # now present: nothing to do, nothing said
    assert (again.returncode, again.stdout, again.stderr) == (0, "", "")
    assert len(machine.calls()) == 3


def test_setup_uses_passwordless_sudo_when_not_root(tmp_path):
    machine = FakeMachine(tmp_path, uid=1000)
    machine.lists.touch()  # the lists are there: one install, no update

    result = machine.make(sudo_ok=True)

    assert result.returncode == 0, result.stderr
    assert machine.calls() == ["sudo install -y -qq chromium DEBIAN_FRONTEND=noninteractive"]
    assert os.access(machine.chromium, os.X_OK)


def test_setup_without_root_or_sudo_says_what_to_run_and_goes_on(tmp_path):
    machine = FakeMachine(tmp_path, uid=1000)

    result = machine.make(sudo_ok=False)

    assert result.returncode == 0  # the rest of the suite still runs
    assert result.stderr == HINT + "\n"
    assert result.stdout == ""
    assert machine.calls() == []


def test_setup_says_so_when_apt_get_cannot_install(tmp_path):
    machine = FakeMachine(tmp_path, uid=0)

    result = machine.make(broken=True)

    assert result.returncode == 0
    assert len(machine.calls()) == 3  # install, update, install again
    assert result.stderr.splitlines() == [
        "E: Unable to locate package chromium",  # the second attempt's error is shown
        "apt-get could not install Debian's chromium (see above): the browser tests fail "
        "until it is installed",
    ]
    assert not machine.chromium.exists()


def test_ci_leaves_the_install_to_make():
    script = (ROOT / ".ci" / "run").read_text()
    commands = [line for line in script.splitlines() if line and not line.startswith("#")]

    assert "apt-get" not in script
    assert commands[-2:] == ["make lint", "make test"]
