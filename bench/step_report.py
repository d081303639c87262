"""What bench_step.py writes besides its JSON: the machine and versions it ran on, the markdown
table and the figure of time against K."""
from __future__ import annotations

import datetime
import os
import platform
import subprocess
import sys
from pathlib import Path

import torch

import centerloss.functional  # noqa: F401  (loads torch.ops.centerloss)

REPO = Path(__file__).resolve().parent.parent



def git_commit():
    env = dict(os.environ, GIT_OPTIONAL_LOCKS="0")  # read-only: never refresh the index
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, env=env, check=True,
                                capture_output=True, text=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                               cwd=REPO, env=env, check=True, capture_output=True,
                               text=True).stdout.strip() != ""
        return commit + ("-dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def cpu_model():
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def environment(device):
    env = {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "host": platform.node(), "platform": platform.platform(), "cpu": cpu_model(),
        "cpu_count": os.cpu_count(), "threads": torch.get_num_threads(),
        "python": platform.python_version(), "torch": torch.__version__,
        "torch_cuda": torch.version.cuda, "commit": git_commit(), "device": str(device),
        "command": " ".join([Path(sys.executable).name] + sys.argv),
        "load_average_at_start": os.getloadavg(),
        "centerloss_cpu_isa": torch.ops.centerloss._cpu_isa(),
    }
    if device.type == "cuda":
        env["gpu"] = torch.cuda.get_device_name(device)
        env["gpu_memory_gib"] = round(torch.cuda.get_device_properties(device).total_memory
                                      / 2**30, 1)
    return env


def fmt_time(seconds):
    if seconds is None:
        return "n/a"
    us = seconds * 1e6
    if us < 1000:
        return f"{us:.1f} us" if us < 100 else f"{us:.0f} us"
    return f"{us / 1000:.2f} ms" if us < 100_000 else f"{us / 1e6:.2f} s"


def markdown_table(results, names):
    head = ["N", "D", "K", "dtype"] + names + ["op / copy", "gather / op"]
    if "compile" in names:
        head.append("compile / op")
    head.append("distmat / op")
    if "op_graph" in names:
        head += ["gather / op_graph"] + (["compile / op_graph"] if "compile" in names else [])
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in results:
        s = r["seconds"]
        cells = [str(r["N"]), str(r["D"]), f"{r['K']:.0e}" if r["K"] >= 10_000 else str(r["K"]),
                 r["dtype"]]
        for name in names:
            cells.append(fmt_time(s[name]) if name in s else r["skipped"].get(name, "n/a"))

        def ratio(a, b):
            return f"{s[a] / s[b]:.2f}x" if a in s and b in s else "-"
        cells += [ratio("op", "copy"), ratio("gather", "op")]
        if "compile" in names:
            cells.append(ratio("compile", "op"))
        cells.append(ratio("distmat", "op"))
        if "op_graph" in names:
            cells.append(ratio("gather", "op_graph"))
            if "compile" in names:
                cells.append(ratio("compile", "op_graph"))
        lines.append("| " + " | ".join(cells) + " |")
    kernel_rows = [r for r in results if r["kernel_seconds"]]
    if kernel_rows:
        lines += ["", "GPU kernel time per step (profiler: sum of kernel durations):", "",
                  "| N | D | K | dtype | " + " | ".join(names) + " |",
                  "|" + "---|" * (4 + len(names))]
        for r in kernel_rows:
            ks = r["kernel_seconds"]
            lines.append(f"| {r['N']} | {r['D']} | {r['K']} | {r['dtype']} | "
                         + " | ".join(fmt_time(ks.get(name)) for name in names) + " |")
    return "\n".join(lines) + "\n"


def plot(results, names, path, env):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ns = sorted({r["N"] for r in results})
    ds = sorted({r["D"] for r in results})
    fig, axes = plt.subplots(len(ns), len(ds), figsize=(4.2 * len(ds), 3.4 * len(ns)),
                             squeeze=False, sharex=True)
    colors = {"op": "C0", "op_raw": "C9", "op_graph": "C4", "gather": "C1", "compile": "C2", "distmat": "C3",
              "copy": "k"}
    styles = {"float32": "-", "bfloat16": "--"}
    for i, n in enumerate(ns):
        for j, d in enumerate(ds):
            ax = axes[i][j]
            for name in names:
                for dt, style in styles.items():
                    pts = [(r["K"], r["seconds"][name]) for r in results
                           if r["N"] == n and r["D"] == d and r["dtype"] == dt
                           and name in r["seconds"]]
                    if pts:
                        ks, ts = zip(*sorted(pts))
                        ax.plot(ks, [t * 1e6 for t in ts], style, marker="o", ms=3,
                                color=colors.get(name, "C7"),
                                label=f"{name} {dt}" if (i, j) == (0, 0) else None)
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.set_title(f"N={n}, D={d}", fontsize=9)
            ax.grid(True, which="both", alpha=0.3)
            if j == 0:
                ax.set_ylabel("time per step (us)")
            if i == len(ns) - 1:
                ax.set_xlabel("K (classes)")
    where = env.get("gpu") or f"{env['cpu']}, {env['threads']} threads"
    fig.suptitle(f"Center loss, one training step ({where}; solid float32, dashed bfloat16)",
                 fontsize=10)
    fig.legend(loc="lower center", ncol=6, fontsize=8)
    fig.tight_layout(rect=(0, 0.06, 1, 0.97))
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
