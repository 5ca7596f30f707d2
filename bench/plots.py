"""PNG plots of a results.json (bench/report.py runs this with whichever
interpreter has matplotlib; needs nothing else).

    python bench/plots.py results.json OUT_DIR   -> prints the PNG paths

  recall_at_k.png  recall@1@k for k = 1..K, one panel per bit width (the
                   TurboQuant paper's Figure 5)
  qps_recall.png   batched queries per second (all threads) against R@1
"""

import json
import os
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

COLORS = plt.get_cmap("tab20").colors


def style(spec):
    """solid: ours; dotted: FAISS 1.7.3; dashed: PyPI peers."""
    if spec["family"] == "ours":
        return "-"
    return ":" if spec["side"] == "ours" else "--"


def ok_results(doc):
    return [r for r in doc["results"] if "error" not in r]


def title(doc):
    ds = doc["dataset"]
    return f"{ds['name']} ({ds['nb']} x {ds['d']}, {ds['metric']})"


def recall_at_k(doc, path):
    wanted = set(doc["config"].get("bits") or [])
    res = [r for r in ok_results(doc) if r["spec"]["bits"] < 16]
    groups = sorted({r["spec"]["bits"] for r in res} & wanted or
                    {r["spec"]["bits"] for r in res})
    if not groups:
        return None
    fig, axes = plt.subplots(1, len(groups), figsize=(5.5 * len(groups), 4.5), squeeze=False)
    for ax, b in zip(axes[0], groups):
        for i, r in enumerate(r for r in res if r["spec"]["bits"] == b):
            rk = r["recall_1_at_k"]
            ax.plot(range(1, len(rk) + 1), rk, style(r["spec"]), color=COLORS[i % 20],
                    label=f"{r['spec']['key']} ({r['bytes_per_vec']:.0f}B)", linewidth=1.4)
        ax.set_xscale("log", base=2)
        ax.set_xlabel("k")
        ax.set_ylabel("recall@1@k")
        ax.set_title(f"{b:g} bits / coordinate")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="lower right")
    fig.suptitle(title(doc) + "\nsolid: faiss-turbo; dotted: FAISS 1.7.3; dashed: PyPI peers",
                 fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def qps_recall(doc, path):
    nt = str(doc["env"]["threads"][0])
    fig, ax = plt.subplots(figsize=(8, 5.5))
    for i, r in enumerate(ok_results(doc)):
        t = r["timing"].get(nt, {}).get("batched")
        if not t:
            continue
        ax.scatter(r["R@1"], t["qps"], color=COLORS[i % 20],
                   marker="o" if r["spec"]["family"] == "ours" else "^")
        ax.annotate(f"{r['spec']['key']} ({r['bytes_per_vec']:.0f}B)", (r["R@1"], t["qps"]),
                    fontsize=6, xytext=(3, 2), textcoords="offset points")
    ax.set_yscale("log")
    ax.set_xlabel("recall@1")
    ax.set_ylabel(f"queries/s, batched, {nt} threads")
    ax.set_title(title(doc))
    ax.grid(alpha=0.3, which="both")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def main():
    with open(sys.argv[1]) as f:
        doc = json.load(f)
    out = sys.argv[2]
    os.makedirs(out, exist_ok=True)
    made = [recall_at_k(doc, os.path.join(out, "recall_at_k.png")),
            qps_recall(doc, os.path.join(out, "qps_recall.png"))]
    print(" ".join(p for p in made if p))
    return 0 if all(made) else 1


if __name__ == "__main__":
    sys.exit(main())
