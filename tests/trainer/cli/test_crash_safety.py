"""Crashes cost no more than the work since the last checkpoint: `train`, `sweep` and the
open-set experiment driver killed with SIGKILL at random moments (some while a checkpoint is
being written), then rerun, end with the model and metrics of an uninterrupted run with the
same seed; after every kill the latest checkpoint loads. SIGINT and SIGTERM write a checkpoint
within the epoch before the trainer exits."""
import glob
import json
import os
import random
import signal
import subprocess
import sys
import time

from cli_runner import CLI, ROOT, require_cli, run
from run_check import TINY, assert_same_results, checkpoint_loads, checkpoint_state, metrics

require_cli()

# A checkpoint after every step: many writes to kill, and a resume within the epoch.
EVERY_STEP = ["--checkpoint-every", "1"]


def kill_until_done(cmd, watch, scratch, seed, kills=6):
    """Runs `cmd` (which must be restartable: --resume auto) and kills it with SIGKILL
    (its whole process group), `kills` times: first while a checkpoint's temporary file is being
    written in one of the folders `watch` returns, then at a random moment, and so on in turn. After each
    kill every checkpoint there must load. Then lets it finish. Returns the number of kills
    that hit a checkpoint being written (its temporary file was left behind)."""
    rng = random.Random(seed)
    mid_write = 0

    def temp_files():
        found = {}
        for d in watch():
            try:
                st = os.stat(os.path.join(d, "checkpoint.pt.tmp"))
            except FileNotFoundError:
                continue
            found[d] = (st.st_ino, st.st_mtime_ns, st.st_size)
        return found

    for attempt in range(kills):
        # A temporary file left by the previous kill is no write of this process.
        stale = temp_files()
        writing = lambda: any(v != stale.get(d) for d, v in temp_files().items())  # noqa: E731
        process = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                   start_new_session=True)
        # (a tiny run takes about a second, most of it starting up)
        deadline = time.monotonic() + (30 if attempt % 2 == 0 else rng.uniform(0.2, 1.5))
        while time.monotonic() < deadline and process.poll() is None:
            # A write takes milliseconds, so a poll alone often sees the file too late: freeze
            # the processes, and kill only if the write is still under way, else let them go on.
            if attempt % 2 == 0 and writing():
                os.killpg(process.pid, signal.SIGSTOP)
                wait_until_stopped(process.pid)
                if writing():
                    break
                os.killpg(process.pid, signal.SIGCONT)
            time.sleep(0.0005)
        if process.poll() is not None:  # finished before this kill
            assert process.returncode == 0, process.stderr.read().decode()
            return mid_write
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        process.stderr.close()
        if writing():
            mid_write += 1
        for d in watch():
            if os.path.exists(os.path.join(d, "checkpoint.pt")):
                checkpoint_loads(d, scratch)  # the latest checkpoint always loads
    final = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert final.returncode == 0, final.stderr
    return mid_write


def wait_until_stopped(group, timeout=5.0):
    """Waits until SIGSTOP has taken effect on every thread of every process in the process
    group `group` (state T in /proc), so that no write goes on meanwhile."""
    def running_threads():
        count = 0
        for task in glob.glob("/proc/[0-9]*/task/[0-9]*/stat"):
            try:
                with open(task) as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except OSError:  # the thread ended meanwhile
                continue
            if int(fields[2]) == group and fields[0] not in ("T", "t", "Z", "X"):
                count += 1
        return count

    deadline = time.monotonic() + timeout
    while running_threads():
        assert time.monotonic() < deadline, f"process group {group} did not stop in {timeout} s"
        time.sleep(0.0002)


def test_train_killed_at_random_moments_ends_like_an_uninterrupted_run(tmp_path):
    options = ["--epochs", "3", "--seed", "5", "--lr", "0.05", *TINY]
    reference = str(tmp_path / "reference")
    run("train", "--out", reference, *options)
    killed = str(tmp_path / "killed")
    mid_write = kill_until_done([CLI, "train", "--out", killed, "--resume", "auto", *EVERY_STEP,
                                 *options], lambda: [killed], str(tmp_path), seed=1)
    assert mid_write >= 1, "no kill landed while a checkpoint was being written"
    assert_same_results(reference, killed)


def test_sweep_killed_at_random_moments_ends_like_an_uninterrupted_sweep(tmp_path):
    options = ["--lambdas", "0,0.1", "--epochs", "2", "--seed", "2", *TINY]
    reference = str(tmp_path / "reference")
    run("sweep", "--out", reference, *options)
    killed = str(tmp_path / "killed")
    runs = lambda: [os.path.join(killed, "lambda_0"), os.path.join(killed, "lambda_0.1")]  # noqa: E731
    kill_until_done([CLI, "sweep", "--out", killed, "--resume", "auto", *EVERY_STEP, *options],
                    runs, str(tmp_path), seed=2)
    for name in ("lambda_0", "lambda_0.1"):
        assert_same_results(os.path.join(reference, name), os.path.join(killed, name))
    summary = lambda d: [{k: v for k, v in r.items() if k != "run"}  # noqa: E731
                         for r in json.load(open(os.path.join(d, "sweep.json")))]
    assert summary(reference) == summary(killed)


def test_openset_experiment_killed_at_random_moments_ends_like_an_uninterrupted_one(tmp_path):
    script = os.path.join(ROOT, "scripts", "experiments", "openset_experiment.py")

    def command(out, extra=""):
        return [sys.executable, script, "--cli", CLI, "--out", out, "--resume", "auto",
                "--dims", "2", "--lambdas", "0,0.1", "--seeds", "1", "--epochs", "2",
                "--train-limit", "300", "--train-args", "--test-limit 100 --batch-size 30 " + extra,
                "--openset-args", "--folds 2 --pairs-per-fold 20"]

    reference = str(tmp_path / "reference")
    subprocess.run(command(reference), check=True, capture_output=True, timeout=600)
    killed = str(tmp_path / "killed")
    runs = lambda: [os.path.join(killed, n) for n in ("D2_lambda0_seed1", "D2_lambda0.1_seed1")]  # noqa: E731
    # (--checkpoint-every is a run option: it may differ from the reference's)
    kill_until_done(command(killed, "--checkpoint-every 1"), runs, str(tmp_path), seed=3)
    for name in ("D2_lambda0_seed1", "D2_lambda0.1_seed1"):
        a, b = os.path.join(reference, name), os.path.join(killed, name)
        assert_same_results(a, b)
        load = lambda d: {k: v for k, v in json.load(open(os.path.join(d, "openset.json"))).items()  # noqa: E731
                          if k != "run"}
        assert load(a) == load(b)
    assert table_without_minutes(reference) == table_without_minutes(killed)


def table_without_minutes(folder):
    """table.md without its last column (each run's wall time)."""
    with open(os.path.join(folder, "table.md")) as f:
        return [line.rsplit("|", 2)[0] if line.startswith("|") else line for line in f]


def stop_with(sig, tmp_path, times=1):
    """Starts a run, sends `sig` `times` times once its first checkpoint exists, and returns
    (exit code, stderr, out)."""
    out = str(tmp_path / "run")
    process = subprocess.Popen([CLI, "train", "--out", out, "--epochs", "2", *EVERY_STEP, *TINY],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    while not os.path.exists(os.path.join(out, "checkpoint.pt")) and process.poll() is None:
        time.sleep(0.005)
    for i in range(times):
        if i:
            time.sleep(0.02)  # handled one by one, not merged while pending
        process.send_signal(sig)
    stdout, stderr = process.communicate(timeout=120)
    return process.returncode, stderr, out


def test_sigint_and_sigterm_write_a_checkpoint_within_the_epoch_and_resume_exactly(tmp_path):
    reference = str(tmp_path / "reference")
    run("train", "--out", reference, "--epochs", "2", *TINY)
    # SIGTERM three times: a dying multi-threaded parent sends its parent-death signal once per
    # thread, and a repeat must not kill the run before its checkpoint is written.
    for sig, name, times in ((signal.SIGINT, "SIGINT", 1), (signal.SIGTERM, "SIGTERM", 3)):
        code, stderr, out = stop_with(sig, tmp_path / name, times)
        assert code == 128 + sig, stderr
        assert name + ": stopped; the checkpoint" in stderr and "Continue with --resume" in stderr
        state = checkpoint_state(out)
        assert state["epoch"].item() < 2 and state["progress_counts"][0].item() > 0  # within an epoch
        checkpoint_loads(out, str(tmp_path))
        # metrics.jsonl keeps the step lines up to the checkpoint; a resume finishes the run.
        result = run("train", "--out", out, "--epochs", "2", "--resume", *TINY)
        assert "resuming" in result.stderr
        assert_same_results(reference, out)


def test_a_second_trainer_on_the_same_folder_is_refused(tmp_path):
    out = str(tmp_path / "run")
    first = subprocess.Popen([CLI, "train", "--out", out, "--epochs", "3", *TINY],
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    while not os.path.exists(os.path.join(out, "config.json")) and first.poll() is None:
        time.sleep(0.005)
    # Frozen (it keeps its lock) while the others try: a tiny run could end before they start.
    first.send_signal(signal.SIGSTOP)
    for extra in ([], ["--resume", "auto"], ["--overwrite"]):
        second = run("train", "--out", out, "--epochs", "1", "--seed", "7", *extra, *TINY, check=False)
        assert second.returncode != 0
        assert "is in use by another centerloss process (pid %d)" % first.pid in second.stderr, second.stderr
    assert first.poll() is None, "the first run ended before the second ones were tried"
    first.send_signal(signal.SIGCONT)
    assert first.wait(timeout=300) == 0, first.stderr.read()
    # The first run went on undisturbed: its own config, its lines in order, a checkpoint that loads.
    assert '"seed": 1' in open(os.path.join(out, "config.json")).read()
    lines = metrics(out)
    assert [r["epoch"] for r in lines if r["kind"] == "epoch"] == [1, 2, 3]
    steps = [r["step"] for r in lines if r["kind"] == "step"]
    assert steps == sorted(set(steps))
    checkpoint_loads(out, str(tmp_path))


def tiny_experiment(tmp_path):
    """The open-set driver on one tiny run (2 epochs, no mid-epoch checkpoints): its command
    line (restartable: --resume auto) and the run's folder."""
    script = os.path.join(ROOT, "scripts", "experiments", "openset_experiment.py")
    out = str(tmp_path / "experiment")
    cmd = [sys.executable, script, "--cli", CLI, "--out", out, "--resume", "auto", "--dims", "2",
           "--lambdas", "0", "--seeds", "1", "--epochs", "2", "--train-limit", "300",
           "--train-args", "--test-limit 100 --batch-size 30 --checkpoint-every 0 --log-every 1",
           "--openset-args", "--folds 2 --pairs-per-fold 20"]
    return cmd, os.path.join(out, "D2_lambda0_seed1")


def start_until_first_step(cmd, run_dir):
    """Starts the driver and returns it once its trainer has done its first step."""
    driver = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    metrics_file = os.path.join(run_dir, "metrics.jsonl")
    while driver.poll() is None and not (os.path.exists(metrics_file) and os.path.getsize(metrics_file)):
        time.sleep(0.005)
    return driver


def test_a_killed_driver_takes_its_trainer_down_at_a_checkpoint(tmp_path):
    """SIGKILL to the experiment driver alone: its trainer gets SIGTERM (the kernel's
    parent-death signal), writes a checkpoint and exits, so no orphan keeps the run's lock; the
    driver's rerun continues."""
    cmd, run_dir = tiny_experiment(tmp_path)
    driver = start_until_first_step(cmd, run_dir)
    trainer = int(open(os.path.join(run_dir, ".lock")).read())
    driver.kill()
    driver.wait()
    deadline = time.monotonic() + 120
    while os.path.exists("/proc/%d" % trainer) and time.monotonic() < deadline:
        with open("/proc/%d/stat" % trainer) as f:
            if f.read().split(")")[-1].split()[0] == "Z":  # exited, not yet reaped
                break
        time.sleep(0.05)
    assert time.monotonic() < deadline, "the trainer outlived its driver"
    state = checkpoint_state(run_dir)  # SIGTERM wrote one, within the first epoch
    assert state["epoch"].item() == 0 and state["progress_counts"][0].item() > 0
    subprocess.run(cmd, check=True, capture_output=True, timeout=600)
    assert os.path.exists(os.path.join(run_dir, "openset.json"))


def test_sigterm_to_the_driver_stops_it_and_its_trainer_at_a_checkpoint(tmp_path):
    """SIGTERM (or Ctrl-C) to the experiment driver: it forwards SIGTERM to its trainer, which
    writes a checkpoint, and exits 143 itself instead of waiting for ever; the rerun continues."""
    cmd, run_dir = tiny_experiment(tmp_path)
    driver = start_until_first_step(cmd, run_dir)
    driver.send_signal(signal.SIGTERM)
    try:
        rc = driver.wait(timeout=120)
    except subprocess.TimeoutExpired:
        driver.kill()
        raise AssertionError("the driver did not exit within 120 s of SIGTERM")
    assert rc == 143
    state = checkpoint_state(run_dir)  # the trainer's SIGTERM checkpoint, within the first epoch
    assert state["epoch"].item() == 0 and state["progress_counts"][0].item() > 0
    subprocess.run(cmd, check=True, capture_output=True, timeout=600)
    assert os.path.exists(os.path.join(run_dir, "openset.json"))
