"""Results as JSON, a markdown table, and PNG plots (bench/plots.py)."""

import json
import os
import platform
import subprocess

import peers

PLOTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "plots.py")


def environment(threads, peer_versions):
    cpu = "?"
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f
                       if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "threads": threads,
            "loadavg_end": os.getloadavg(),
            "omp_wait_policy": peers.ours_env().get("OMP_WAIT_POLICY"),
            "python": platform.python_version(), "ours": peers.ours_versions(),
            "peers": peer_versions}


def timing(res, threads, kind):
    t = res.get("timing", {}).get(str(threads), {}).get(kind)
    return t["qps"] if t else None


def fmt(v, spec=".3f"):
    return "-" if v is None else format(v, spec)


COLUMNS = ("key", "library", "bits", "B/vec", "R@1", "R@1@10", "10-R@10",
           "train s", "encode us/vec", "QPS batch {nt}T", "QPS batch 1T",
           "QPS nq=1 1T", "QPS nq=1 {nt}T", "nq=1 1T GB/s (read)",
           "peak MB (+idx)")


def bandwidth_cell(res):
    """the nq=1 scan's codes per second at 1 thread, and its share of the
    worker's own read of as many bytes"""
    t = res.get("timing", {}).get("1", {}).get("nq1")
    if not t or "gbps" not in t or not res.get("read_gbps"):
        return "-"
    return f"{t['gbps']:.1f} ({100 * t['gbps'] / res['read_gbps']:.0f}%)"


def size_cell(res):
    """Bytes per vector; '*' where an equal-size peer missed our size by
    more than 2% (no valid shape reaches it, e.g. PQ needs M | d)."""
    target = res["spec"].get("target_bytes")
    off = target and abs(res["bytes_per_vec"] - target) > 0.02 * target
    return fmt(res["bytes_per_vec"], ".1f") + (f" *({target})" if off else "")


def row(res, nt):
    s = res["spec"]
    if "error" in res:
        return [s["key"], s["lib"], fmt(s["bits"], "g"), "FAILED: " + res["error"][:80]] + \
            [""] * (len(COLUMNS) - 4)
    return [s["key"], s["lib"], fmt(s["bits"], "g"), size_cell(res),
            fmt(res["R@1"]), fmt(res["R@1@10"]), fmt(res["10-R@10"]),
            fmt(res["train_s"], ".2f"), fmt(res["encode_us_per_vec"], ".1f"),
            fmt(timing(res, nt, "batched"), ".0f"), fmt(timing(res, 1, "batched"), ".0f"),
            fmt(timing(res, 1, "nq1"), ".0f"), fmt(timing(res, nt, "nq1"), ".0f"),
            bandwidth_cell(res),
            f"{res['peak_rss_mb']:.0f} (+{res['peak_delta_mb']:.0f})"]


def markdown(doc):
    nt = doc["env"]["threads"][0]
    ds = doc["dataset"]
    head = [c.format(nt=nt) for c in COLUMNS]
    lines = [f"### {ds['name']}: {ds['nb']} x {ds['d']} base, {ds['nq']} queries, "
             f"{ds['metric']}, k={doc['config']['k']}, {nt} threads", "",
             "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for res in sorted(doc["results"], key=lambda r: (r["spec"]["bits"], r["spec"]["side"])):
        lines.append("| " + " | ".join(row(res, nt)) + " |")
    env = doc["env"]
    repeat = doc.get("config", {}).get("repeat", 1)
    lines += ["", "B/vec `*(N)`: an equal-size peer whose valid shapes cannot reach our N "
              "bytes (within 2%). QPS: the median of "
              f"{repeat} timed run{'s' if repeat != 1 else ''} (JSON: qps_runs). QPS "
              "batch 1T: a subset of the queries; nq=1: one query "
              "per call. nq=1 GB/s: the index's codes (B/vec x base) per query "
              "over its latency, and its share of the worker's own one-thread read "
              "of as many bytes (IVF, HNSW and turbovec's staged search read less "
              "than every code: for them an effective rate). peak MB: the worker's "
              "peak RSS (VmHWM; ru_maxrss would carry "
              "the parent's) (+ growth over interpreter, library and data).", "",
              f"CPU: {env['cpu']}, {env['cores']} cores, load average at the end "
              f"{', '.join(f'{x:.1f}' for x in env.get('loadavg_end', []))}; "
              f"OMP_WAIT_POLICY={env.get('omp_wait_policy')}; ours: {env['ours']}; "
              f"peers: {env['peers'] or 'no venv'}"]
    return "\n".join(lines) + "\n"


def write(doc, out_dir):
    os.makedirs(out_dir, exist_ok=True)
    paths = {"json": os.path.join(out_dir, "results.json"),
             "md": os.path.join(out_dir, "results.md")}
    with open(paths["json"], "w") as f:
        json.dump(doc, f, indent=1)
    with open(paths["md"], "w") as f:
        f.write(markdown(doc))
    paths.update(plot(paths["json"], out_dir))
    return paths


def plot(json_path, out_dir):
    """PNG plots with whichever interpreter has matplotlib."""
    for py, env in ((peers.OURS_PYTHON, None), (peers.venv_python(), peers.peer_env())):
        if not os.access(py, os.X_OK):
            continue
        p = subprocess.run([py, PLOTS, json_path, out_dir], env=env,
                           capture_output=True, text=True)
        if p.returncode == 0:
            return {"png": p.stdout.split()}
    return {"png": [], "png_note": "no matplotlib (peers venv or python3-matplotlib)"}
