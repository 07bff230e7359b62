"""OS errors carry errno, strerror and filename; binding is not connecting; a Client subclass
that forgets super().__init__() gets a clear error instead of connecting to a default address."""

from __future__ import annotations

import errno
import os
import pickle
import shutil
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import loadmon

from conftest import small_client

# A TestClient with 1 MB chunks: its probe writes one 1 MB chunk into out_dir.
SMALL = "chunk_size=1, file_size=2, min_chunk_size=1"


def test_a_port_in_use_is_a_bind_error_with_errno(server: loadmon.Server) -> None:
    other = loadmon.Server(port=server.port)
    with pytest.raises(loadmon.BindError, match=f"^bind 127.0.0.1:{server.port}: ") as info:
        other.start()
    e = info.value
    assert isinstance(e, OSError) and isinstance(e, loadmon.LoadmonError)
    # Binding is not connecting.
    assert not isinstance(e, ConnectionError)
    assert not isinstance(e, loadmon.ConnectError)
    assert e.errno == errno.EADDRINUSE
    assert e.strerror == os.strerror(errno.EADDRINUSE)
    assert e.filename is None
    assert "bind" in str(e)
    assert not other.running


def test_an_http_port_in_use_is_a_bind_error(server: loadmon.Server) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        taken = s.getsockname()[1]
        other = loadmon.Server(port=0, http=f"127.0.0.1:{taken}")
        with pytest.raises(loadmon.BindError, match="bind HTTP 127.0.0.1:") as info:
            other.start()
    assert info.value.errno == errno.EADDRINUSE


def test_an_unreachable_server_is_a_connect_error_with_errno(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    client = small_client(port, tmp_path, connect_timeout=0.3)
    with pytest.raises(loadmon.ConnectError, match=f"connect 127.0.0.1:{port}") as info:
        client.run()
    assert info.value.errno == errno.ECONNREFUSED
    assert info.value.strerror == os.strerror(errno.ECONNREFUSED)
    assert info.value.filename is None


def test_an_out_dir_under_a_file_is_a_file_error_with_errno_and_filename(tmp_path: Path) -> None:
    f = tmp_path / "a_file"
    f.write_bytes(b"x")
    out_dir = f / "sub"
    with pytest.raises(loadmon.FileError, match="create directory") as info:
        loadmon.TestClient(out_dir=out_dir, chunk_size=1, file_size=2, min_chunk_size=1)
    e = info.value
    assert e.errno == errno.ENOTDIR
    assert e.strerror == os.strerror(errno.ENOTDIR)
    assert e.filename == str(out_dir)
    # The message is still the engine's, naming what was done and the path.
    assert str(e) == f"create directory {out_dir}: Not a directory (os error {errno.ENOTDIR})"
    # A value: pickling keeps the fields and the message.
    back = pickle.loads(pickle.dumps(e))
    assert type(back) is loadmon.FileError
    assert (back.errno, back.strerror, back.filename, str(back)) == (
        e.errno, e.strerror, e.filename, str(e))


def test_the_classes_still_work_as_plain_exceptions() -> None:
    # Raised by user code with the usual OSError arguments, they behave as OSError does.
    e = loadmon.FileError(errno.ENOSPC, "No space left on device", "/data/f")
    assert (e.errno, e.filename) == (errno.ENOSPC, "/data/f")
    assert str(e) == "[Errno 28] No space left on device: '/data/f'"
    assert str(loadmon.BindError("plain")) == "plain"


@pytest.fixture
def shared_dir() -> Iterator[Path]:
    """A temporary directory another user can enter (pytest's tmp_path is root's only)."""
    d = Path(tempfile.mkdtemp(prefix="loadmon-errors-"))
    try:
        d.chmod(0o755)
        yield d
    finally:
        shutil.rmtree(d)


def _run(cmd: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120)


# Prints errno, strerror, filename of the FileError the TestClient raises for OUT_DIR.
_PROBE = textwrap.dedent(f"""
    import sys, loadmon
    try:
        loadmon.TestClient(out_dir=sys.argv[1], {SMALL})
    except loadmon.FileError as e:
        print(repr((e.errno, e.strerror, e.filename, str(e))))
    else:
        print("no error")
""")


@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("setpriv") is None,
                    reason="needs root and setpriv to run as another user")
def test_an_unwritable_out_dir_is_a_file_error_with_eacces(shared_dir: Path) -> None:
    ro = shared_dir / "ro"
    ro.mkdir(mode=0o555)
    ro.chmod(0o555)
    out = _run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                sys.executable, "-c", _PROBE, str(ro)])
    assert out.returncode == 0, out.stderr
    got = eval(out.stdout.strip())  # noqa: S307 - our own repr of a tuple
    assert got[:2] == (errno.EACCES, os.strerror(errno.EACCES)), got
    assert Path(got[2]).parent == ro, got
    assert got[2] in got[3], got


def _tmpfs_works(d: Path) -> bool:
    if shutil.which("unshare") is None or os.geteuid() != 0:
        return False
    return _run(["unshare", "-m", "sh", "-c",
                 f"mount -t tmpfs -o size=256k tmpfs {d}"]).returncode == 0


def test_a_full_disk_is_a_file_error_with_enospc(shared_dir: Path) -> None:
    # A 256 KB tmpfs in a mount namespace of its own (gone with the process): the probe's 1 MB
    # chunk does not fit.
    mnt = shared_dir / "mnt"
    mnt.mkdir()
    if not _tmpfs_works(mnt):
        pytest.skip("cannot mount a tmpfs here")
    script = f'mount -t tmpfs -o size=256k tmpfs "$1" && exec "$2" -c "$3" "$1"'
    out = _run(["unshare", "-m", "sh", "-c", script, "sh", str(mnt), sys.executable, _PROBE])
    assert out.returncode == 0, out.stderr
    got = eval(out.stdout.strip())  # noqa: S307 - our own repr of a tuple
    assert got[:2] == (errno.ENOSPC, os.strerror(errno.ENOSPC)), got
    assert Path(got[2]).parent == mnt, got
    assert got[3].startswith("write "), got


class Forgetful(loadmon.Client):
    """Its __init__ never calls super().__init__()."""

    def __init__(self, port: int) -> None:
        self.my_port = port

    def run_tests(self, ctx: loadmon.Context) -> None:
        raise AssertionError("must not run")


def test_a_subclass_that_forgets_super_init_gets_a_clear_error(server: loadmon.Server) -> None:
    c = Forgetful(server.port)
    t0 = time.monotonic()
    for call in (c.run, c.start):
        with pytest.raises(loadmon.StateError, match=r"super\(\).__init__"):
            call()
    with pytest.raises(loadmon.StateError, match=r"Forgetful.__init__"):
        c.run()
    assert time.monotonic() - t0 < 5, "refused at once, without trying to connect"
    assert not c.running
    # Nothing reached the server.
    assert server.clients == ()


def test_a_subclass_without_its_own_init_is_fine(server: loadmon.Server) -> None:
    class Quick(loadmon.Client):
        def run_tests(self, ctx: loadmon.Context) -> None:
            ctx.file_rollover()

    assert Quick(port=server.port).run().files_written == 1
