"""deploy/: the production nginx site passes `nginx -t`, and the systemd
units pass `systemd-analyze verify` (docs/deploy.md).

`systemd-analyze verify` needs no running systemd (it loads the units
offline; this also works in a container whose PID 1 is not systemd), but
it checks that each ExecStart binary exists and that the EnvironmentFile is
readable: so the units are verified as installed at this checkout (its
.venv, a copy of deploy/chat.env.example), with nothing else changed. It
does not check that the user `chat` exists or that the hardening options
are supported by the running kernel; docs/deploy.md's `systemctl status`
step does."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import IN_CI

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"


def need(tool: str, package: str) -> str:
    path = shutil.which(tool) or (f"/usr/sbin/{tool}" if os.path.exists(f"/usr/sbin/{tool}") else "")
    if path:
        return path
    message = f"{tool} is not installed (Debian: {package}; `scripts/services up nginx` installs nginx)"
    if IN_CI:
        pytest.fail(message)
    pytest.skip(message)


def test_the_nginx_site_passes_nginx_t(tmp_path):
    nginx = need("nginx", "nginx-light")
    openssl = need("openssl", "openssl")
    # A throw-away certificate where certbot's would be.
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=chat.example.org",
         "-keyout", str(tmp_path / "privkey.pem"), "-out", str(tmp_path / "fullchain.pem")],
        check=True, capture_output=True,
    )  # fmt: skip
    site = (DEPLOY / "nginx.conf").read_text()
    for installed, here in (
        ("/etc/nginx/snippets/chat-proxy.conf", str(DEPLOY / "nginx-chat-proxy.conf")),
        ("/etc/letsencrypt/live/chat.example.org/", f"{tmp_path}/"),
        ("/var/log/nginx/", f"{tmp_path}/"),
    ):
        assert installed in site, installed
        site = site.replace(installed, here)
    (tmp_path / "site.conf").write_text(site)
    temp = " ".join(f"{kind}_temp_path {tmp_path}/{kind};" for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    (tmp_path / "nginx.conf").write_text(
        f"pid {tmp_path}/nginx.pid;\nerror_log {tmp_path}/error.log;\nevents {{}}\n"
        f"http {{ include /etc/nginx/mime.types; {temp} include {tmp_path}/site.conf; }}\n"
    )
    done = subprocess.run([nginx, "-t", "-p", str(tmp_path), "-c", str(tmp_path / "nginx.conf"), "-e", str(tmp_path / "error.log")], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_the_proxy_rules_carry_what_the_app_relies_on():
    """The headers the app's proxy trust, Origin check and CSRF read, and
    limits that match the settings (chatsite/settings.py)."""
    from django.conf import settings

    rules = (DEPLOY / "nginx-chat-proxy.conf").read_text()
    site = (DEPLOY / "nginx.conf").read_text()
    for line in (
        "proxy_set_header Host $http_host;",
        "proxy_set_header X-Forwarded-For $remote_addr;",
        "proxy_set_header X-Forwarded-Proto $scheme;",
        "proxy_set_header Upgrade $http_upgrade;",
        "proxy_set_header Connection $connection_upgrade;",
        "proxy_request_buffering off;",
    ):
        assert line in rules, line
    assert "map $http_upgrade $connection_upgrade" in site
    # WebSockets: longer than the heartbeat's interval plus its timeout.
    ws = rules.split("location /ws/", 1)[1].split("}", 1)[0]
    read_timeout = int(ws.split("proxy_read_timeout", 1)[1].split("s;", 1)[0])
    assert read_timeout > settings.CHAT_PING_INTERVAL + settings.CHAT_PING_TIMEOUT
    # Body limits: the app's exactly (a larger one here turns the app's 413 into a 502).
    uploads = rules.split("location /api/files/", 1)[1].split("}", 1)[0]
    assert int(uploads.split("client_max_body_size", 1)[1].split("m;", 1)[0]) * 1024 * 1024 == settings.CHAT_MAX_UPLOAD_BYTES
    general = int(rules.split("\nclient_max_body_size", 1)[1].split("m;", 1)[0]) * 1024 * 1024
    assert general == settings.CHAT_MAX_REQUEST_BYTES
    assert "location = /metrics" in rules


def test_the_systemd_units_pass_systemd_analyze_verify(tmp_path):
    analyze = need("systemd-analyze", "systemd")
    env_file = tmp_path / "chat.env"
    shutil.copy(DEPLOY / "chat.env.example", env_file)
    python = Path(sys.executable)
    units = tmp_path / "units"
    units.mkdir()
    for unit in (DEPLOY / "systemd").iterdir():
        text = unit.read_text()
        text = text.replace("/srv/chat/app/.venv/bin/python", str(python)).replace("/srv/chat/app", str(ROOT))
        text = text.replace("/etc/chat/chat.env", str(env_file))
        (units / unit.name).write_text(text)
    names = ["chat@8001.service", "chat@8002.service", "chat-worker.service", "chat.target"]
    done = subprocess.run(
        [analyze, "verify", "--man=no", *(str(units / name) for name in names)],
        capture_output=True, text=True, cwd=units, env={**os.environ, "SYSTEMD_LOG_LEVEL": "notice"},
    )  # fmt: skip
    # Lines about units this test did not write (the host's own) are not ours.
    ours = [line for line in (done.stdout + done.stderr).splitlines() if "chat" in line]
    assert done.returncode == 0 and not ours, done.stdout + done.stderr
