"""The real Claude Code CLI signing in to a company gateway with ``/login``.

The gateway URL can only come from a *managed* settings file, which on Linux
lives in ``/etc/claude-code``: the CLI runs in a private mount namespace
(``unshare -m``, as root) where ``/etc`` is an overlay whose writes land in a
temporary directory and ``/etc/claude-code`` is a bind mount of a temporary
directory holding ``managed-settings.json``. The machine's ``/etc`` is never
written. ``/login`` is interactive only, so the CLI runs in tmux (a private
server socket, whose server is started inside the namespace and so lives in
it) and the screens are read with ``capture-pane`` and answered with
``send-keys``:

    (a fresh HOME's theme picker) → "Cloud gateway … Enter to connect" →
    "Trust gateway 127.0.0.1? … http-loopback" (cursor on "No, go back") →
    code + URL → (the caller approves the code in a browser) → (when the
    gateway names the account: "Yes, continue") → "Connected to Cloud gateway"

``ask()`` then takes the same interactive session past its first-run screens
(security notes, folder trust) to its prompt and types into it.

``claude -p`` then runs in the same namespace (``nsenter`` into the tmux
server's) with the same temporary HOME and no API variables: it uses the
credential the sign-in stored in ``~/.claude/.credentials.json``.

    with ClaudeSignin(tmp_path, gateway_url) as cli:
        shown = cli.start()                 # shown.user_code, shown.verification_url
        ...approve shown.user_code in a browser...
        cli.wait_connected()
        proc = cli.claude_p("say hi", "--output-format", "json")
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
CLAUDE = ROOT / ".cache" / "claude-code" / "node_modules" / ".bin" / "claude"

# Quiet, and never reaching for anything but the gateway; no ANTHROPIC_* at all.
QUIET_ENV = {"DISABLE_AUTOUPDATER": "1", "DISABLE_ERROR_REPORTING": "1"}
CODE = re.compile(r"Code:\s+([A-Z0-9]{3,}(?:-[A-Z0-9]{3,})+)")
EMPTY_INPUT = re.compile(r"^❯\s*$", re.M)  # the session's prompt box, empty
URL = re.compile(r"https?://[^\s│]+")
FAILURES = (
    "Couldn't connect to the gateway",
    "Sign-in was denied",
    "Sign-in timed out",
    "gateway device authorization endpoint returned malformed response",
    "gateway token endpoint returned malformed response",
    "The gateway is limiting sign-in attempts",
    "no gateway URL is configured",
    "The gateway answered HTTP",
)


def can_run() -> str:
    """Why this machine cannot run the harness, or "" when it can."""
    if not CLAUDE.exists():
        return f"Claude Code CLI missing at {CLAUDE}: run `make test`, which installs it"
    if os.geteuid() != 0:
        return "a private mount namespace over /etc needs root"
    for tool in ("tmux", "unshare", "nsenter"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed"
    return ""


@dataclass
class Shown:
    """What the CLI shows the user to finish the sign-in in a browser."""

    user_code: str
    verification_url: str
    screen: str


@dataclass
class Screen:
    name: str
    at: float  # seconds since start()
    text: str = field(repr=False)


class SigninError(AssertionError):
    """The CLI's sign-in did not reach the screen it was driven to."""


class ClaudeSignin:
    def __init__(
        self,
        directory: Path,
        gateway_url: str,
        *,
        env: dict[str, str] | None = None,
        managed_settings: dict[str, Any] | None = None,
        args: tuple[str, ...] = (),
    ) -> None:
        reason = can_run()
        if reason:
            raise RuntimeError(reason)
        self.dir = directory
        self.gateway_url = gateway_url.rstrip("/")
        self.args = args  # for the interactive session (`claude_p` takes its own)
        self.env = {**QUIET_ENV, **(env or {})}
        assert not any(k.startswith("ANTHROPIC_") for k in self.env), (
            "a signed-in CLI takes no API variables"
        )
        self.home = directory / "home"
        self.work = directory / "work"
        self.managed = directory / "managed"
        self.upper = directory / "etc-upper"
        self.overlay_work = directory / "etc-work"
        for d in (self.home, self.work, self.managed, self.upper, self.overlay_work):
            d.mkdir(parents=True, exist_ok=True)
        settings = {
            "forceLoginMethod": "gateway",
            "forceLoginGatewayUrl": self.gateway_url,
            **(managed_settings or {}),
        }
        (self.managed / "managed-settings.json").write_text(json.dumps(settings))
        self.socket = directory / "tmux.sock"
        self.session = "claude"
        self.server_pid: int | None = None
        self.screens: list[Screen] = []
        self._started = 0.0

    # -- the namespace and the terminal ---------------------------------

    def _mounts(self) -> str:
        """Shell lines that give this namespace its own /etc/claude-code."""
        return "\n".join(
            [
                "set -e",
                # Private: nothing mounted here propagates to the machine.
                "mount --make-rprivate /",
                f"mount -t overlay overlay -o lowerdir=/etc,upperdir={self.upper},workdir={self.overlay_work} /etc",
                "mkdir -p /etc/claude-code",
                f"mount --bind {self.managed} /etc/claude-code",
            ]
        )

    def _cli_env(self) -> list[str]:
        base = {
            "PATH": "/usr/local/bin:/usr/bin:/bin",
            "HOME": str(self.home),
            "LANG": "C.UTF-8",
            "BROWSER": "/bin/true",
        }
        return ["env", "-i", *(f"{k}={v}" for k, v in {**base, **self.env}.items())]

    def _tmux(self, *args: str, timeout: float = 10) -> str:
        proc = subprocess.run(
            ["tmux", "-S", str(self.socket), *args], capture_output=True, text=True, timeout=timeout
        )
        if proc.returncode != 0:
            raise SigninError(f"tmux {args[0]} failed: {proc.stderr.strip()}")
        return proc.stdout

    def _open_terminal(self) -> None:
        conf = self.dir / "tmux.conf"
        conf.write_text("set -g remain-on-exit on\nset -g history-limit 5000\n")
        command = shlex.join([*self._cli_env(), "TERM=xterm-256color", str(CLAUDE), *self.args])
        script = "\n".join(
            [
                self._mounts(),
                f"cd {shlex.quote(str(self.work))}",
                "exec "
                + shlex.join(
                    ["tmux", "-S", str(self.socket), "-f", str(conf), "new-session", "-d", "-s", self.session,
                     "-x", "250", "-y", "50", command]
                ),
            ]
        )  # fmt: skip
        proc = subprocess.run(
            ["unshare", "-m", "--propagation", "private", "sh", "-c", script],
            capture_output=True, text=True, timeout=20,
        )  # fmt: skip
        if proc.returncode != 0:
            raise SigninError(f"could not start the CLI in its namespace: {proc.stderr.strip()}")
        self.server_pid = int(
            self._tmux("display-message", "-p", "-t", self.session, "#{pid}").strip()
        )

    def pane(self) -> str:
        """The screen as the user sees it, wrapped lines joined."""
        return self._tmux("capture-pane", "-p", "-J", "-t", self.session)

    def keys(self, *keys: str) -> None:
        self._tmux("send-keys", "-t", self.session, *keys)

    def _pane_dead(self) -> bool:
        return (
            self._tmux("display-message", "-p", "-t", self.session, "#{pane_dead}").strip() == "1"
        )

    def _select(self, text: str, option: str) -> None:
        """Move the menu's cursor (❯) to ``option``, check it is there, and choose it."""
        for _ in range(5):
            lines = text.splitlines()
            target = next((i for i, line in enumerate(lines) if option in line), None)
            cursors = [i for i, line in enumerate(lines) if "❯" in line]
            if target is None or not cursors:
                raise SigninError(f"no menu with {option!r} on screen:\n{text}")
            cursor = min(cursors, key=lambda i: abs(i - target))
            if cursor == target:
                self.keys("Enter")
                return
            self.keys(
                *(["Up"] * (cursor - target) if cursor > target else ["Down"] * (target - cursor))
            )
            time.sleep(0.3)
            text = self.pane()
        raise SigninError(f"could not move the cursor to {option!r}:\n{text}")

    def _settled(self) -> str:
        """The screen once it has stopped changing (keys sent mid-redraw can land on the next screen)."""
        text = self.pane()
        for _ in range(20):
            time.sleep(0.3)
            again = self.pane()
            if again == text:
                return text
            text = again
        return text

    def _seen(self, name: str, text: str) -> None:
        if not self.screens or self.screens[-1].name != name:
            self.screens.append(Screen(name, round(time.monotonic() - self._started, 2), text))

    def _fail_if_broken(self, text: str) -> None:
        for failure in FAILURES:
            if failure in text:
                raise SigninError(f"the CLI says: {failure!r}\n{text}")
        if self._pane_dead():
            raise SigninError(f"the CLI exited:\n{text}")

    # -- the sign-in ------------------------------------------------------

    def start(self, timeout: float = 60) -> Shown:
        """Start the CLI, go through its gateway screens and return the code and URL it shows."""
        self._started = time.monotonic()
        self._open_terminal()
        deadline = self._started + timeout
        acted: tuple[str, float] = ("", 0.0)
        while time.monotonic() < deadline:
            text = self.pane()
            self._fail_if_broken(text)
            code = CODE.search(text)
            if code:
                urls = URL.findall(text[code.end() :])
                if urls:
                    self._seen("code", text)
                    return Shown(code.group(1), urls[0], text)
            # Answer each screen once; again only if it stays put for 3 s.
            if text == acted[0] and time.monotonic() - acted[1] < 3:
                time.sleep(0.1)
                continue
            if "Choose the text style" in text:
                self._seen("theme", text)
                self.keys("Enter")
            elif "Trust gateway" in text:
                self._seen("trust", text)
                self._select(text, "Yes, trust this gateway")
            elif "Enter to connect" in text:
                self._seen("gateway", text)
                self.keys("Enter")
            else:
                time.sleep(0.1)
                continue
            acted = (text, time.monotonic())
            time.sleep(0.2)
        raise SigninError(f"no code and URL within {timeout:.0f} s:\n{self.pane()}")

    def wait_connected(self, timeout: float = 60, *, email: str | None = None) -> str:
        """Wait for "Connected" once the code is approved; confirms the account
        when the gateway names one (and checks it is ``email`` if given)."""
        deadline = time.monotonic() + timeout
        acted = ""
        while time.monotonic() < deadline:
            text = self.pane()
            self._fail_if_broken(text)
            if "Connected to Cloud gateway" in text:
                self._seen("connected", text)
                return text
            if "Yes, continue" in text and text != acted:
                self._seen("confirm-account", text)
                if email is not None and email not in text:
                    raise SigninError(
                        f"the CLI asks to confirm another account than {email}:\n{text}"
                    )
                self._select(text, "Yes, continue")
                acted = text
            time.sleep(0.1)
        raise SigninError(f"not connected within {timeout:.0f} s:\n{self.pane()}")

    def ask(self, prompt: str, until: str, timeout: float = 60) -> str:
        """Type a prompt into the signed-in interactive session (past its
        remaining first-run screens) and return the screen once ``until`` shows."""
        deadline = time.monotonic() + timeout
        acted: tuple[str, float] = ("", 0.0)
        typed = False
        while time.monotonic() < deadline:
            text = self.pane() if typed else self._settled()
            self._fail_if_broken(text)
            if typed and until in text:
                self._seen("answered", text)
                return text
            if text == acted[0] and time.monotonic() - acted[1] < 3:
                time.sleep(0.1)
                continue
            if typed:
                time.sleep(0.1)
                continue
            if "Press Enter to continue" in text:
                self._seen("continue", text)
                self.keys("Enter")
            elif "Yes, I trust this folder" in text:
                self._seen("trust-folder", text)
                self._select(text, "Yes, I trust this folder")
            elif "Yes, proceed" in text:
                self._seen("trust-folder", text)
                self._select(text, "Yes, proceed")
            elif EMPTY_INPUT.search(text) and "────" in text:
                self._seen("prompt", text)
                self.keys("-l", prompt)
                time.sleep(0.3)
                self.keys("Enter")
                typed = True
            else:
                time.sleep(0.1)
                continue
            acted = (text, time.monotonic())
            time.sleep(0.2)
        raise SigninError(f"{until!r} not on screen within {timeout:.0f} s:\n{self.pane()}")

    def credentials(self) -> dict[str, Any]:
        path = self.home / ".claude" / ".credentials.json"
        return json.loads(path.read_text()) if path.exists() else {}

    def timings(self) -> str:
        return ", ".join(f"{s.name} +{s.at:.1f}s" for s in self.screens)

    # -- after the sign-in ------------------------------------------------

    def claude_p(
        self, prompt: str, *args: str, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        """``claude -p`` in the sign-in's namespace and HOME, with no API variables."""
        if self.server_pid is None:
            raise SigninError("start() first: claude -p runs in the sign-in's namespace")
        return subprocess.run(
            ["nsenter", "-t", str(self.server_pid), "-m", "--", *self._cli_env(), str(CLAUDE), "-p", prompt, *args],
            cwd=self.work, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL,
        )  # fmt: skip

    def close(self) -> None:
        pid = self.server_pid
        if self.socket.exists():
            subprocess.run(
                ["tmux", "-S", str(self.socket), "kill-server"], capture_output=True, timeout=10
            )
        if pid is not None:
            # The server (and with it the namespace) is ours: make sure it is gone.
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline and _alive(pid):
                time.sleep(0.05)
            if _alive(pid):
                os.kill(pid, 9)
        self.server_pid = None

    def __enter__(self) -> ClaudeSignin:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"


def result_of(proc: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    assert proc.stdout.strip(), f"no output (exit {proc.returncode}); stderr: {proc.stderr[-2000:]}"
    return json.loads(proc.stdout.strip().splitlines()[-1])
