"""Transports against real servers: OpenSSH sshd and asyncssh for SFTP, pyftpdlib for FTP/FTPS,
a local folder, aiosmtpd for e-mail. Every server serves a directory of this test, so each test
checks what really landed on the server's disk."""

from __future__ import annotations

import base64
import itertools
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import asyncssh
import paramiko
import pytest

from caturactl.config import MailConfig, TransportConfig
from caturactl.core.errors import ConfigError, InputError, RefusedError, RejectedError, RemoteError
from caturactl.ports import MailMessage, RenderedFile
from connectors.ftp.folder import FolderTransport
from connectors.ftp.ftp import FtpTransport
from connectors.ftp.names import is_temp_name, safe_name
from connectors.ftp.sftp import SftpTransport
from connectors.mail.smtp import EmailTransport, SmtpMailer
from standins.servers import FtpStandin, SmtpStandin

KINDS = ["sshd", "asyncssh", "ftp", "ftps", "folder"]
SERVER_KINDS = ["sshd", "asyncssh", "ftp", "ftps"]
UNSAFE_NAMES = ["../x", "/etc/passwd", "a/b", "", ".", "..", "a\\b", "C:x.csv", "a\x00b", "a\nb.csv",
                "x" * 300]
_test_no = itertools.count()


def rendered(name: str, content: bytes = b"delivery;L000001\n") -> RenderedFile:
    return RenderedFile(name=name, content=content, media_type="text/csv")


def tree(top: Path) -> dict[str, bytes]:
    """Every file below ``top`` with its content: what a server really holds."""
    return {str(p.relative_to(top)): p.read_bytes() for p in sorted(top.rglob("*")) if p.is_file()}


@dataclass
class Location:
    """One server (or folder) under test, seen from both sides: ``make`` builds a transport to it,
    ``root`` is the directory its outbound "in" and inbound "out" folders live in."""

    kind: str
    root: Path
    top: Path  # everything the server could write to, for "nothing was written" checks
    make_cfg: Callable[..., TransportConfig]
    make_transport: Callable[[TransportConfig], object]
    stop: Callable[[], None] | None = None
    start: Callable[[], object] | None = None
    opened: list = field(default_factory=list)

    @property
    def out(self) -> Path:
        return self.root / "in"

    @property
    def inbox(self) -> Path:
        return self.root / "out"

    def make(self, **overrides):
        t = self.make_transport(self.make_cfg(**overrides))
        self.opened.append(t)
        return t


def _sftp_location(kind: str, server, root: Path, prefix: str, user: str, base_dir: Path,
                   password: str | None = None) -> Location:
    def cfg(**overrides) -> TransportConfig:
        values = dict(kind="sftp", host="127.0.0.1", port=server.port, user=user,
                      host_key=server.host_key_line, key_file=str(server.client_key_file),
                      outbound_dir=f"{prefix}in", inbound_dir=f"{prefix}out", timeout_seconds=3)
        values.update(overrides)
        return TransportConfig(**values)

    return Location(kind, root, server.root, cfg,
                    lambda c: SftpTransport("fulfiller", c, password=password, base_dir=base_dir),
                    server.stop, server.start)


@pytest.fixture(params=KINDS)
def location(request, tmp_path):
    kind = request.param
    if kind == "sshd":
        sshd = request.getfixturevalue("sshd")
        prefix = f"t{os.getpid()}-{next(_test_no)}"
        root = sshd.root / prefix
        root.mkdir()
        loc = _sftp_location(kind, sshd, root, f"{prefix}/", "root", tmp_path)
    elif kind == "asyncssh":
        standin = request.getfixturevalue("sftp_standin")
        loc = _sftp_location(kind, standin, standin.root, "", "demo", tmp_path)
    elif kind in ("ftp", "ftps"):
        server = request.getfixturevalue("ftps_server" if kind == "ftps" else "ftp_server")

        def cfg(**overrides) -> TransportConfig:
            values = dict(kind=kind, host="127.0.0.1", port=server.port, user="demo",
                          ca_file=str(server.ca_file or ""), timeout_seconds=3)
            values.update(overrides)
            return TransportConfig(**values)

        loc = Location(kind, server.root, server.root, cfg,
                       lambda c: FtpTransport("fulfiller", c, password="demo", base_dir=tmp_path),
                       server.stop, server.start)
    else:
        share = tmp_path / "share"
        share.mkdir()

        def cfg(**overrides) -> TransportConfig:
            values = dict(kind="folder", path="share", timeout_seconds=3)
            values.update(overrides)
            return TransportConfig(**values)

        loc = Location(kind, share, share, cfg, lambda c: FolderTransport("fulfiller", c, base_dir=tmp_path))
    yield loc
    for t in loc.opened:
        t.close()


# --- every transport ----------------------------------------------------------------------------


def test_send_delivers_under_the_final_name_only(location):
    t = location.make()
    content = "Lieferschein L000001;Müller GmbH\n".encode() * 2000
    assert t.send(rendered("L000001.csv", content)) is True
    assert os.listdir(location.out) == ["L000001.csv"]
    assert (location.out / "L000001.csv").read_bytes() == content


def test_resend_of_a_delivered_name_returns_false_and_keeps_the_first_content(location):
    t = location.make()
    assert t.send(rendered("L000002.csv", b"first")) is True
    assert t.send(rendered("L000002.csv", b"second")) is False
    assert location.make().send(rendered("L000002.csv", b"third")) is False  # a new connection too
    assert os.listdir(location.out) == ["L000002.csv"]
    assert (location.out / "L000002.csv").read_bytes() == b"first"


def test_a_name_the_location_has_read_and_moved_aside_is_not_sent_again(location):
    # The location reads L000004.csv and moves it to in/done (reference/carriers/formats.md §6).
    # Without read_dirs the name is gone from the inbox and a resend delivers it twice; with
    # them the transport sees it was delivered.
    assert location.make().send(rendered("L000004.csv", b"first")) is True
    (location.out / "done").mkdir()
    os.rename(location.out / "L000004.csv", location.out / "done" / "L000004.csv")
    assert location.make(read_dirs=["done", "error"]).send(rendered("L000004.csv", b"again")) is False
    assert os.listdir(location.out) == ["done"]
    assert location.make().send(rendered("L000004.csv", b"again")) is True  # what read_dirs prevents
    assert (location.out / "L000004.csv").read_bytes() == b"again"


def test_before_commit_runs_once_just_before_the_file_appears(location):
    seen: list[list[str]] = []
    t = location.make()
    assert t.send(rendered("L000005.csv"), before_commit=lambda: seen.append(sorted(os.listdir(location.out)))) is True
    # Called with the whole upload done under the temporary name, before the rename.
    assert len(seen) == 1 and "L000005.csv" not in seen[0] and any(n.endswith(".part") for n in seen[0])
    assert t.send(rendered("L000005.csv"), before_commit=lambda: seen.append([])) is False
    assert len(seen) == 1  # a name already there is never sent, so there is nothing to mark


def test_send_creates_a_missing_nested_outbound_folder(location):
    prefix = location.make_cfg().outbound_dir[: -len("in")]
    t = location.make(outbound_dir=f"{prefix}orders/today")
    assert t.send(rendered("L000003.csv")) is True
    assert os.listdir(location.root / "orders" / "today") == ["L000003.csv"]


def test_incoming_lists_final_names_oldest_first_without_temp_hidden_or_folders(location):
    location.inbox.mkdir()
    for i, name in enumerate(["SHP_3.csv", "SHP_1.csv", "SHP_2.csv", ".SHP_4.csv.part", "SHP_5.csv.tmp",
                              ".hidden", "SHP_6.part"]):
        path = location.inbox / name
        path.write_bytes(b"x")
        os.utime(path, (1_700_000_000 + i * 1000, 1_700_000_000 + i * 1000))
    (location.inbox / "archive").mkdir()
    (location.inbox / "archive" / "SHP_0.csv").write_bytes(b"old")
    # SHP_1 and SHP_2 share a second: the name decides
    os.utime(location.inbox / "SHP_2.csv", (1_700_000_000 + 1000, 1_700_000_000 + 1000))
    assert location.make().incoming() == ["SHP_3.csv", "SHP_1.csv", "SHP_2.csv"]


def test_incoming_of_a_missing_folder_is_empty(location):
    assert location.make().incoming() == []


def test_fetch_returns_the_bytes_and_a_missing_file_is_an_input_error(location):
    location.inbox.mkdir()
    (location.inbox / "SHP_1.csv").write_bytes(b"L000001;DHL;00340434161094042557\n")
    t = location.make()
    assert t.fetch("SHP_1.csv") == b"L000001;DHL;00340434161094042557\n"
    with pytest.raises(InputError):
        t.fetch("SHP_9.csv")
    assert t.fetch("SHP_1.csv") == b"L000001;DHL;00340434161094042557\n"  # the connection survived


def test_move_aside_keeps_every_earlier_file_and_adds_a_suffix(location):
    inbox = location.inbox
    (inbox / "archive").mkdir(parents=True)
    (inbox / "archive" / "SHP_1.csv").write_bytes(b"archived yesterday")
    t = location.make()
    for content in (b"today", b"again"):
        (inbox / "SHP_1.csv").write_bytes(content)
        t.move_aside("SHP_1.csv", "archive")
    (inbox / "SHP_2.csv").write_bytes(b"broken")
    t.move_aside("SHP_2.csv", "error")
    assert tree(inbox) == {"archive/SHP_1.csv": b"archived yesterday", "archive/SHP_1.csv.1": b"today",
                           "archive/SHP_1.csv.2": b"again", "error/SHP_2.csv": b"broken"}
    with pytest.raises(InputError):
        t.move_aside("SHP_1.csv", "archive")  # already moved
    with pytest.raises(InputError):
        t.move_aside("SHP_1.csv", "trash")
    assert t.incoming() == []


def test_move_aside_to_an_absolute_archive_folder(location):
    if location.kind == "sshd":
        archive = str(location.root / "abs-archive")
    elif location.kind == "asyncssh":
        archive = "/abs-archive"  # chrooted: / is the stand-in's root
    elif location.kind == "folder":
        archive = str(location.root / "abs-archive")
    else:
        archive = "/abs-archive"  # pyftpdlib: / is the user's home
    location.inbox.mkdir()
    (location.inbox / "SHP_1.csv").write_bytes(b"x")
    location.make(archive_dir=archive).move_aside("SHP_1.csv", "archive")
    assert (location.root / "abs-archive" / "SHP_1.csv").read_bytes() == b"x"


def test_unsafe_names_are_refused_and_nothing_is_written(location):
    location.inbox.mkdir()
    (location.inbox / "SHP_1.csv").write_bytes(b"x")
    before = tree(location.top)
    t = location.make()
    for name in UNSAFE_NAMES:
        with pytest.raises(InputError):
            t.send(rendered(name))
        with pytest.raises(InputError):
            t.fetch(name)
        with pytest.raises(InputError):
            t.move_aside(name, "archive")
    assert tree(location.top) == before
    assert not (location.root / "x").exists() and not (location.root / "in").exists()


@pytest.mark.parametrize("location", SERVER_KINDS, indirect=True)
def test_server_down_is_a_remote_error_and_after_restart_the_file_arrives_once(location):
    t = location.make()
    assert t.send(rendered("L000010.csv")) is True  # leaves an open connection the outage breaks
    location.stop()
    try:
        with pytest.raises(RemoteError) as down:
            t.send(rendered("L000011.csv"))
        assert "fulfiller" in str(down.value) and "127.0.0.1" in str(down.value)
        with pytest.raises(RemoteError):
            t.incoming()
    finally:
        location.start()
    assert t.send(rendered("L000011.csv")) is True
    assert t.send(rendered("L000011.csv")) is False
    assert sorted(os.listdir(location.out)) == ["L000010.csv", "L000011.csv"]


# --- SFTP -----------------------------------------------------------------------------------


def _other_host_key() -> str:
    return asyncssh.generate_private_key("ssh-ed25519").export_public_key().decode().strip()


@pytest.mark.parametrize("location", ["sshd", "asyncssh"], indirect=True)
def test_sftp_without_a_pinned_host_key_is_a_config_error(location):
    with pytest.raises(ConfigError, match="not pinned"):
        location.make(host_key="")
    assert not location.out.exists()


@pytest.mark.parametrize("location", ["sshd", "asyncssh"], indirect=True)
def test_sftp_with_a_changed_host_key_is_a_config_error_and_sends_nothing(location):
    t = location.make(host_key=_other_host_key())
    with pytest.raises(ConfigError, match="does not match"):
        t.send(rendered("L000001.csv"))
    assert not location.out.exists()


@pytest.mark.parametrize("location", ["sshd", "asyncssh"], indirect=True)
def test_sftp_host_key_from_a_known_hosts_file_relative_to_the_config(location, tmp_path):
    port = location.make_cfg().port
    (tmp_path / "known_hosts").write_text(f"[127.0.0.1]:{port} {location.make_cfg().host_key}\n")
    assert location.make(host_key="", known_hosts="known_hosts").send(rendered("L000001.csv")) is True
    (tmp_path / "other_hosts").write_text(f"[127.0.0.1]:{port} {_other_host_key()}\n")
    with pytest.raises(ConfigError, match="does not match"):
        location.make(host_key="", known_hosts="other_hosts").incoming()
    (tmp_path / "wrong_port").write_text(f"[127.0.0.1]:1 {location.make_cfg().host_key}\n")
    with pytest.raises(ConfigError, match="no entry"):
        location.make(host_key="", known_hosts="wrong_port")


@pytest.mark.parametrize("location", ["sshd", "asyncssh"], indirect=True)
def test_sftp_key_file_readable_by_others_is_a_config_error(location, tmp_path):
    key = tmp_path / "id_ed25519"
    shutil.copy(location.make_cfg().key_file, key)
    key.chmod(0o644)
    with pytest.raises(ConfigError, match="group/others"):
        location.make(key_file=str(key))
    key.chmod(0o600)
    assert location.make(key_file="id_ed25519").send(rendered("L000001.csv")) is True  # relative to base_dir


@pytest.mark.parametrize("location", ["sshd", "asyncssh"], indirect=True)
def test_sftp_key_the_server_does_not_know_is_a_config_error(location, tmp_path):
    key = tmp_path / "stranger"
    asyncssh.generate_private_key("ssh-ed25519").write_private_key(str(key))
    key.chmod(0o600)
    with pytest.raises(ConfigError, match="refused"):
        location.make(key_file=str(key)).send(rendered("L000001.csv"))
    with pytest.raises(ConfigError, match="key_file"):
        location.make(key_file=str(tmp_path / "missing"))


def test_sftp_password_login(sftp_standin, tmp_path):
    cfg = TransportConfig(kind="sftp", host="127.0.0.1", port=sftp_standin.port, user="demo",
                          host_key=sftp_standin.host_key_line, timeout_seconds=3)
    with SftpTransport("pw", cfg, password="sftp-secret", base_dir=tmp_path) as t:
        assert t.send(rendered("L000001.csv")) is True
    with SftpTransport("pw", cfg, password="wrong", base_dir=tmp_path) as t:
        with pytest.raises(ConfigError, match="refused"):
            t.send(rendered("L000002.csv"))
    with pytest.raises(ConfigError, match="neither key_file nor a password"):
        SftpTransport("pw", cfg, base_dir=tmp_path)
    assert os.listdir(sftp_standin.root / "in") == ["L000001.csv"]


def test_sftp_standin_renames_like_openssh(sftp_standin):
    (sftp_standin.root / "a").write_bytes(b"a")
    (sftp_standin.root / "b").write_bytes(b"b")
    kind, data = sftp_standin.host_key_line.split()[:2]
    ssh = paramiko.SSHClient()
    ssh.get_host_keys().add(f"[127.0.0.1]:{sftp_standin.port}", kind,
                            paramiko.PKey.from_type_string(kind, base64.b64decode(data)))
    ssh.connect("127.0.0.1", sftp_standin.port, username="demo", key_filename=str(sftp_standin.client_key_file),
                allow_agent=False, look_for_keys=False, timeout=3)
    try:
        sftp = ssh.open_sftp()
        with pytest.raises(OSError):
            sftp.rename("a", "b")
        sftp.posix_rename("a", "b")
    finally:
        ssh.close()
    assert tree(sftp_standin.root) == {"b": b"a"}


# --- FTP / FTPS -----------------------------------------------------------------------------


def _ftp_cfg(server: FtpStandin, kind: str, **overrides) -> TransportConfig:
    values = dict(kind=kind, host="127.0.0.1", port=server.port, user="demo", timeout_seconds=3)
    values.update(overrides)
    return TransportConfig(**values)


def test_plain_ftp_to_an_ftps_only_server_is_refused_cleanly(ftps_server, tmp_path):
    with FtpTransport("f", _ftp_cfg(ftps_server, "ftp"), password="demo", base_dir=tmp_path) as t:
        with pytest.raises(ConfigError, match="refused"):
            t.send(rendered("L000001.csv"))
    assert tree(ftps_server.root) == {}


def test_ftps_to_a_server_without_tls_is_refused_cleanly(ftp_server, tmp_path):
    with FtpTransport("f", _ftp_cfg(ftp_server, "ftps"), password="demo", base_dir=tmp_path) as t:
        with pytest.raises(ConfigError):
            t.send(rendered("L000001.csv"))
    assert tree(ftp_server.root) == {}


def test_ftps_verifies_the_server_certificate(ftps_server, tmp_path):
    with FtpTransport("f", _ftp_cfg(ftps_server, "ftps"), password="demo", base_dir=tmp_path) as t:
        with pytest.raises(ConfigError, match="certificate"):  # system CAs do not know the stand-in
            t.send(rendered("L000001.csv"))
    shutil.copy(ftps_server.ca_file, tmp_path / "ca.pem")
    with FtpTransport("f", _ftp_cfg(ftps_server, "ftps", ca_file="ca.pem"), password="demo", base_dir=tmp_path) as t:
        assert t.send(rendered("L000001.csv")) is True
    with pytest.raises(ConfigError, match="ca_file"):
        FtpTransport("f", _ftp_cfg(ftps_server, "ftps", ca_file="missing.pem"), base_dir=tmp_path)


def test_ftp_wrong_password_is_a_config_error(ftp_server, tmp_path):
    with FtpTransport("f", _ftp_cfg(ftp_server, "ftp"), password="wrong", base_dir=tmp_path) as t:
        with pytest.raises(ConfigError, match="login"):
            t.incoming()


def test_ftp_server_without_mlsd_still_works(tmp_path):
    with FtpStandin(tmp_path / "old", mlsd=False) as server, \
            FtpTransport("f", _ftp_cfg(server, "ftp"), password="demo", base_dir=tmp_path) as t:
        assert t.send(rendered("L000001.csv", b"one")) is True
        assert t.send(rendered("L000001.csv", b"two")) is False
        inbox = server.root / "out"
        (inbox / "archive").mkdir(parents=True)
        for i, name in enumerate(["SHP_2.csv", "SHP_1.csv", ".SHP_3.csv.part"]):
            (inbox / name).write_bytes(name.encode())
            os.utime(inbox / name, (1_700_000_000 + i * 1000,) * 2)
        assert t.incoming() == ["SHP_2.csv", "SHP_1.csv"]
        (inbox / "archive" / "SHP_2.csv").write_bytes(b"older")
        t.move_aside("SHP_2.csv", "archive")
        assert tree(server.root) == {"in/L000001.csv": b"one", "out/.SHP_3.csv.part": b".SHP_3.csv.part",
                                     "out/SHP_1.csv": b"SHP_1.csv", "out/archive/SHP_2.csv": b"older",
                                     "out/archive/SHP_2.csv.1": b"SHP_2.csv"}


# --- folder ---------------------------------------------------------------------------------


def test_folder_that_is_not_there_is_a_remote_error_and_is_not_created(tmp_path):
    cfg = TransportConfig(kind="folder", path="mnt/fulfiller")
    t = FolderTransport("share", cfg, base_dir=tmp_path)
    with pytest.raises(RemoteError, match="not mounted"):
        t.send(rendered("L000001.csv"))
    with pytest.raises(RemoteError):
        t.incoming()
    assert not (tmp_path / "mnt").exists()
    with pytest.raises(ConfigError):
        FolderTransport("share", TransportConfig(kind="folder"), base_dir=tmp_path)


def test_folder_fetch_does_not_follow_a_symlink_out_of_the_inbox(tmp_path):
    (tmp_path / "share" / "out").mkdir(parents=True)
    (tmp_path / "secret").write_bytes(b"secret")
    (tmp_path / "share" / "out" / "SHP_1.csv").symlink_to(tmp_path / "secret")
    t = FolderTransport("share", TransportConfig(kind="folder", path="share"), base_dir=tmp_path)
    assert t.incoming() == []
    with pytest.raises(InputError):
        t.fetch("SHP_1.csv")


# --- names ----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", UNSAFE_NAMES + ["\u0085x", "a\x7fb"])
def test_safe_name_refuses_paths_and_control_characters(name):
    with pytest.raises(InputError):
        safe_name(name)


def test_safe_name_keeps_plain_names_and_temp_names_are_recognised():
    for name in ["L000001.csv", "Lieferschein Müller €.pdf", "SHP_20251103_001.csv", "a..b"]:
        assert safe_name(name) == name
        assert not is_temp_name(name)
    assert all(is_temp_name(n) for n in [".x.csv.part", "x.part", "x.tmp", ".hidden"])


# --- SMTP -----------------------------------------------------------------------------------


def _mail_cfg(server: SmtpStandin, **overrides) -> MailConfig:
    values = dict(host="127.0.0.1", port=server.port, security="none", from_address="shop@example.com",
                  timeout_seconds=3)
    values.update(overrides)
    return MailConfig(**values)


def _message(**overrides) -> MailMessage:
    values = dict(to=("lager@example.com",), subject="Lieferauftrag L000001 – 12,50 €",
                  body="Guten Tag,\nanbei der Auftrag für Müller.\n",
                  attachments=(RenderedFile("L000001.pdf", b"%PDF-1.7\n\x00\xff binary", "application/pdf"),
                               RenderedFile("L000001.csv", "Müller;1\n".encode(), "text/csv")),
                  message_id="<outbox-42@caturactl>")
    values.update(overrides)
    return MailMessage(**values)


def test_smtp_delivers_subject_body_and_attachments_unchanged(smtp_server, tmp_path):
    SmtpMailer(_mail_cfg(smtp_server), base_dir=tmp_path).send(_message(reply_to="info@example.com"))
    [msg] = smtp_server.messages
    assert smtp_server.envelopes == [("shop@example.com", ("lager@example.com",))]
    assert msg["Subject"] == "Lieferauftrag L000001 – 12,50 €"
    assert msg["Message-ID"] == "<outbox-42@caturactl>"
    assert msg["Reply-To"] == "info@example.com"
    assert msg["Date"].datetime.tzinfo is not None
    assert msg.get_body(("plain",)).get_content() == "Guten Tag,\nanbei der Auftrag für Müller.\n"
    got = [(p.get_filename(), p.get_content_type(), p.get_payload(decode=True)) for p in msg.iter_attachments()]
    assert got == [("L000001.pdf", "application/pdf", b"%PDF-1.7\n\x00\xff binary"),
                   ("L000001.csv", "text/csv", "Müller;1\n".encode())]


def test_smtp_starttls_with_login(tmp_path):
    with SmtpStandin(tls=True, user="shop", password="s3cret") as server:
        cfg = _mail_cfg(server, security="starttls", user="shop", ca_file=str(server.ca_file))
        SmtpMailer(cfg, password="s3cret", base_dir=tmp_path).send(_message())
        assert len(server.messages) == 1
        with pytest.raises(ConfigError, match="login"):
            SmtpMailer(cfg, password="wrong", base_dir=tmp_path).send(_message())
        with pytest.raises(ConfigError, match="certificate"):
            SmtpMailer(_mail_cfg(server, security="starttls", user="shop"), password="s3cret",
                       base_dir=tmp_path).send(_message())
        with pytest.raises(ConfigError):  # 530 must issue STARTTLS first
            SmtpMailer(_mail_cfg(server), base_dir=tmp_path).send(_message())
        with pytest.raises(ConfigError, match="no password"):
            SmtpMailer(cfg, base_dir=tmp_path)
        assert len(server.messages) == 1


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")  # aiosmtpd sees only STARTTLS as TLS
def test_smtp_implicit_tls(tmp_path):
    with SmtpStandin(implicit_tls=True, user="shop", password="s3cret") as server:
        cfg = _mail_cfg(server, security="ssl", user="shop", ca_file=str(server.ca_file))
        SmtpMailer(cfg, password="s3cret", base_dir=tmp_path).send(_message())
        assert [m["Message-ID"] for m in server.messages] == ["<outbox-42@caturactl>"]


def test_smtp_starttls_against_a_server_without_it_is_a_config_error(smtp_server, tmp_path):
    with pytest.raises(ConfigError, match="STARTTLS"):
        SmtpMailer(_mail_cfg(smtp_server, security="starttls"), base_dir=tmp_path).send(_message())


def test_smtp_transient_refusal_is_a_remote_error_and_the_retry_delivers(smtp_server, tmp_path):
    mailer = SmtpMailer(_mail_cfg(smtp_server), base_dir=tmp_path)
    smtp_server.fail_next(451)
    with pytest.raises(RemoteError) as e:
        mailer.send(_message())
    assert not isinstance(e.value, RejectedError) and "451" in str(e.value)
    mailer.send(_message())
    assert len(smtp_server.messages) == 1


@pytest.mark.parametrize("stage", ["data", "rcpt"])
def test_smtp_permanent_refusal_is_a_rejected_error(smtp_server, tmp_path, stage):
    smtp_server.fail_next(550, stage=stage)
    with pytest.raises(RejectedError, match="550"):
        SmtpMailer(_mail_cfg(smtp_server), base_dir=tmp_path).send(_message())
    assert smtp_server.messages == []


def test_smtp_one_of_two_recipients_refused_is_rejected_and_names_it(smtp_server, tmp_path):
    smtp_server.fail_next(550, stage="rcpt")
    with pytest.raises(RejectedError, match="lager@example.com.*other recipients"):
        SmtpMailer(_mail_cfg(smtp_server), base_dir=tmp_path).send(
            _message(to=("lager@example.com", "buero@example.com")))
    assert smtp_server.envelopes == [("shop@example.com", ("buero@example.com",))]


def test_smtp_transient_recipient_refusal_is_a_remote_error(smtp_server, tmp_path):
    smtp_server.fail_next(450, stage="rcpt")
    with pytest.raises(RemoteError) as e:
        SmtpMailer(_mail_cfg(smtp_server), base_dir=tmp_path).send(_message())
    assert not isinstance(e.value, RejectedError)


def test_smtp_server_down_is_a_remote_error_and_back_on_the_same_port_it_delivers(smtp_server, tmp_path):
    mailer = SmtpMailer(_mail_cfg(smtp_server), base_dir=tmp_path)
    smtp_server.stop()
    with pytest.raises(RemoteError, match="connection refused"):
        mailer.send(_message())
    smtp_server.start()
    mailer.send(_message())
    assert len(smtp_server.messages) == 1


def test_smtp_header_injection_is_refused(smtp_server, tmp_path):
    with pytest.raises(InputError):
        SmtpMailer(_mail_cfg(smtp_server), base_dir=tmp_path).send(
            _message(subject="Hallo\nBcc: everyone@example.com"))
    with pytest.raises(InputError):
        SmtpMailer(_mail_cfg(smtp_server), base_dir=tmp_path).send(_message(to=()))
    assert smtp_server.messages == []


def test_email_transport_mails_the_file_to_the_location(smtp_server, tmp_path):
    mailer = SmtpMailer(_mail_cfg(smtp_server), base_dir=tmp_path)
    cfg = TransportConfig(kind="email", to=["lager@fulfiller.example", "chef@fulfiller.example"])
    t = EmailTransport("fulfiller", cfg, mailer, from_company="Gartenfreude GmbH")
    file = RenderedFile("L000007.xml", b"<order id='L000007'/>", "application/xml")
    assert t.send(file) is True
    assert t.send(file) is True  # e-mail cannot see the first copy; the Message-ID is the same
    first, second = smtp_server.messages
    assert smtp_server.envelopes[0][1] == ("lager@fulfiller.example", "chef@fulfiller.example")
    assert first["Subject"] == "Lieferauftrag L000007.xml"
    assert first["Message-ID"] == second["Message-ID"] == t.message_id("L000007.xml")
    assert "Gartenfreude GmbH" in first.get_body(("plain",)).get_content()
    [attachment] = first.iter_attachments()
    assert (attachment.get_filename(), attachment.get_content_type(), attachment.get_payload(decode=True)) == \
        ("L000007.xml", "application/xml", b"<order id='L000007'/>")
    other = EmailTransport("fulfiller", cfg, mailer, from_company="Anderer Shop GmbH")
    assert other.message_id("L000007.xml") != t.message_id("L000007.xml")
    assert t.incoming() == []
    with pytest.raises(InputError):
        t.fetch("x.csv")
    with pytest.raises(InputError):
        t.move_aside("x.csv", "archive")
    with pytest.raises(InputError):
        t.send(rendered("../L000008.xml"))
    with pytest.raises(ConfigError):
        EmailTransport("nobody", TransportConfig(kind="email"), mailer)
    assert len(smtp_server.messages) == 2


def test_folder_a_file_that_appears_between_the_check_and_the_publish_is_not_overwritten(tmp_path):
    share = tmp_path / "share"
    share.mkdir()
    t = FolderTransport("fulfiller", TransportConfig(kind="folder", path="share"), base_dir=tmp_path)

    def someone_else_delivers() -> None:  # right before the publish, after every check of ours
        (share / "in" / "L000009.csv").write_bytes(b"theirs")

    assert t.send(rendered("L000009.csv", b"ours"), before_commit=someone_else_delivers) is False
    assert tree(share) == {"in/L000009.csv": b"theirs"}  # kept, and no temporary file left behind
    assert t.send(rendered("L000010.csv", b"ours")) is True
    assert tree(share) == {"in/L000009.csv": b"theirs", "in/L000010.csv": b"ours"}


@pytest.mark.parametrize("stage", ["data", "rcpt"])
def test_smtp_transient_refusal_after_the_mark_says_nothing_was_taken(smtp_server, tmp_path, stage):
    # The outbox clears its "sending" mark on a RefusedError: the server answered, so the mail is
    # not in doubt. A timeout waiting for the answer stays a plain RemoteError (in doubt).
    marked: list[bool] = []
    smtp_server.fail_next(450, stage=stage)
    with pytest.raises(RefusedError, match="450"):
        SmtpMailer(_mail_cfg(smtp_server), base_dir=tmp_path).send(_message(), before_data=lambda: marked.append(True))
    assert marked == [True] and smtp_server.messages == []
