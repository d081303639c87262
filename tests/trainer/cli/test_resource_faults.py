"""Resource faults get a clear error and leave the previous checkpoint (and features file)
intact: a full disk while a checkpoint or the features are written (a file-size limit,
RLIMIT_FSIZE, everywhere; a small tmpfs where this machine lets the tests mount one) and an
output folder that cannot be written."""
import ctypes
import os
import resource
import shutil
import signal
import subprocess

import pytest

from cli_runner import CLI, require_cli, run
from run_check import TINY, assert_same_results, checkpoint_loads

require_cli()


def limited_file_size(limit):
    """preexec_fn: files may grow to `limit` bytes; a write beyond fails with EFBIG (SIGXFSZ
    ignored, so the process sees the error instead of dying)."""
    def apply():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    return apply


def without_root_override():
    """preexec_fn: the permission bits bind even for root (drops CAP_DAC_OVERRIDE and
    CAP_DAC_READ_SEARCH from the capability bounding set, which the exec'd program keeps)."""
    if os.geteuid() != 0:
        return None

    def apply():
        libc = ctypes.CDLL(None, use_errno=True)
        for capability in (1, 2):  # CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH
            if libc.prctl(24, capability, 0, 0, 0) != 0:  # PR_CAPBSET_DROP
                raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP)")
    return apply


def cli(*args, preexec=None):
    return subprocess.run([CLI, *args], capture_output=True, text=True, timeout=600,
                          preexec_fn=preexec)


def snapshot(folder):
    return {name: open(os.path.join(folder, name), "rb").read() for name in sorted(os.listdir(folder))
            if os.path.isfile(os.path.join(folder, name)) and name != ".lock"}


@pytest.fixture
def one_epoch(tmp_path):
    out = str(tmp_path / "run")
    run("train", "--out", out, "--epochs", "1", *TINY)
    return out


def test_a_full_disk_while_writing_a_checkpoint_keeps_the_previous_one(one_epoch, tmp_path):
    size = os.path.getsize(os.path.join(one_epoch, "checkpoint.pt"))
    before = snapshot(one_epoch)
    result = cli("train", "--out", one_epoch, "--epochs", "2", "--resume", *TINY,
                 preexec=limited_file_size(size // 2))
    assert result.returncode == 1, result.stderr
    assert "cannot write checkpoint" in result.stderr and "checkpoint.pt.tmp" in result.stderr
    assert "File too large" in result.stderr, result.stderr
    after = snapshot(one_epoch)
    assert after["checkpoint.pt"] == before["checkpoint.pt"]
    assert "checkpoint.pt.tmp" not in after
    # With room again, the same command continues to the result of an uninterrupted run.
    run("train", "--out", one_epoch, "--epochs", "2", "--resume", *TINY)
    reference = str(tmp_path / "reference")
    run("train", "--out", reference, "--epochs", "2", *TINY)
    assert_same_results(reference, one_epoch)


def test_a_full_disk_while_writing_features_keeps_the_previous_file(one_epoch, tmp_path):
    features = str(tmp_path / "features.pt")
    run("embed", "--run", one_epoch, "--out", features, "--classes", "0")  # 1000 samples
    before = open(features, "rb").read()
    # every class, ten times the size: the disk fills up halfway through
    result = cli("embed", "--run", one_epoch, "--out", features,
                 preexec=limited_file_size(len(before) * 5))
    assert result.returncode == 1 and "features.pt.tmp" in result.stderr, result.stderr
    assert open(features, "rb").read() == before
    assert not os.path.exists(features + ".tmp")


def can_mount():
    return os.geteuid() == 0 and shutil.which("mount") is not None


@pytest.fixture
def small_tmpfs(tmp_path):
    """A tmpfs of 1.5 checkpoints: the first checkpoint fits, a second copy of it does not."""
    if not can_mount():
        pytest.skip("mounting a tmpfs needs root")
    size = None
    probe = str(tmp_path / "probe")
    run("train", "--out", probe, "--epochs", "1", *TINY)
    size = os.path.getsize(os.path.join(probe, "checkpoint.pt"))
    mount_point = tmp_path / "disk"
    mount_point.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=%d" % (size * 3 // 2), "tmpfs",
                              str(mount_point)], capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip("cannot mount a tmpfs here: " + mounted.stderr.strip())
    yield str(mount_point)
    subprocess.run(["umount", str(mount_point)], check=True)


def test_a_full_tmpfs_while_writing_a_checkpoint_keeps_the_previous_one(small_tmpfs, tmp_path):
    out = os.path.join(small_tmpfs, "run")
    run("train", "--out", out, "--epochs", "1", *TINY)
    before = snapshot(out)
    result = cli("train", "--out", out, "--epochs", "2", "--resume", *TINY)
    assert result.returncode == 1, result.stderr
    assert "cannot write checkpoint" in result.stderr and "No space left on device" in result.stderr, result.stderr
    after = snapshot(out)
    assert after["checkpoint.pt"] == before["checkpoint.pt"]
    assert "checkpoint.pt.tmp" not in after
    checkpoint_loads(out, str(tmp_path))


def test_an_output_folder_that_cannot_be_written_is_named(one_epoch, tmp_path):
    before = snapshot(one_epoch)
    os.chmod(one_epoch, 0o555)
    try:
        result = cli("train", "--out", one_epoch, "--epochs", "2", "--resume", *TINY,
                     preexec=without_root_override())
        assert result.returncode == 1
        assert one_epoch in result.stderr and "Permission denied" in result.stderr, result.stderr
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o555)
        inside = str(locked / "run")
        result = cli("train", "--out", inside, "--epochs", "1", *TINY, preexec=without_root_override())
        assert result.returncode == 1
        assert "cannot create directory '%s'" % inside in result.stderr
        assert "Permission denied" in result.stderr, result.stderr
    finally:
        os.chmod(one_epoch, 0o755)
    assert snapshot(one_epoch) == before
