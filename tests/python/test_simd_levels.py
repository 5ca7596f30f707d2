"""Every SIMD level gives the same codes and the same results, bit for
bit, through the indexes themselves: each level (FAISS_TURBO_SIMD=scalar,
avx2, and the CPU's best, e.g. AVX-512 VNNI) runs in its own process, as
the choice is made once per process. The C++ tests compare the kernels;
this covers every path that calls them (flat, fast-scan, IVF row and
block lists, batches and single queries, range search, the sign
pre-scan)."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

import faiss_turbo as ft

KEYS = ["TQmse4", "TQmse2", "TQmse1", "TQprod3", "TQ2.5", "TQmse2c",
        "TQmse4fs", "TQmse2fs", "IVF8,TQmse4", "IVF8,TQmse2",
        "IVF8,TQmse2fs", "IVF8,TQprod3"]

# d = 300: 2- and 1-bit segments span several 32-byte chunks
WORKER = r'''
import json, sys
import numpy as np
import faiss, faiss_turbo as ft
out, keys = sys.argv[1], sys.argv[2].split(";")
d, nb, nq, k = 300, 2000, 32, 10  # nq: the pre-scan's smallest batch
rs = np.random.RandomState(5)
xb = (rs.randn(nb, d) + 2 * rs.randn(20, d)[rs.randint(20, size=nb)])
xb = xb.astype(np.float32)
xq = xb[:nq] + 0.3 * rs.randn(nq, d).astype(np.float32)
res = {"kernels": ft.int8_kernels_name(), "prescan": ft.prescan_supported()}
for key in keys:
    index = ft.index_factory(d, key)
    index.train(xb)
    index.add(xb)
    if hasattr(index, "nprobe"):
        index.nprobe = 4
    D, I = index.search(xq, k)                     # batched: tiles
    P = D, I
    if not key.startswith("IVF"):                  # the sign pre-scan
        P = index.search(xq, k, params=ft.SearchParametersTurboQuant(
            prescan=200))
    D1 = np.vstack([index.search(xq[i:i + 1], k)[0] for i in range(4)])
    I1 = np.vstack([index.search(xq[i:i + 1], k)[1] for i in range(4)])
    r = float(np.median(D[:, k // 2]))
    lims, RD, RI = index.range_search(xq[:3], r)
    codes = index.sa_encode(xb[:50])
    np.savez(out + "_" + key.replace(",", "_") + ".npz", D=D, I=I, D1=D1,
             I1=I1, lims=lims, RD=RD, RI=RI, codes=codes, PD=P[0], PI=P[1])
json.dump(res, open(out + ".json", "w"))
'''


def run_level(tmp, level):
    env = dict(os.environ)
    if level:
        env["FAISS_TURBO_SIMD"] = level
    else:
        env.pop("FAISS_TURBO_SIMD", None)
    out = os.path.join(tmp, level or "best")
    subprocess.run([sys.executable, "-c", WORKER, out, ";".join(KEYS)],
                   env=env, check=True, timeout=300)
    with open(out + ".json") as f:
        res = json.load(f)
        return out, res["kernels"], res["prescan"]


def test_levels_agree_bit_for_bit(tmp_path):
    runs = [run_level(str(tmp_path), lv) for lv in ["scalar", "avx2", ""]]
    names = [name for _, name, _ in runs]
    assert names[0] == "scalar"
    if len(set(names)) < 2:
        pytest.skip("one kernel set on this CPU: %s" % names)
    suffixes = ["_" + key.replace(",", "_") + ".npz" for key in KEYS]
    ref = runs[0][0]
    for out, name, _ in runs[1:]:
        for key, suffix in zip(KEYS, suffixes):
            a, b = np.load(ref + suffix), np.load(out + suffix)
            for field in a.files:
                if field in ("PD", "PI"):
                    continue
                np.testing.assert_array_equal(
                    a[field], b[field],
                    err_msg="%s %s: scalar vs %s" % (key, field, name))
    # the pre-scan: the same wherever it applies (SIMD sign kernels), the
    # plain scan's results where it does not
    with_prescan = [(out, name) for out, name, p in runs if p]
    for out, name, p in runs:
        for key, suffix in zip(KEYS, suffixes):
            a = np.load(out + suffix)
            if not p:
                np.testing.assert_array_equal(a["PI"], a["I"])
                continue
            b = np.load(with_prescan[0][0] + suffix)
            for field in ("PD", "PI"):
                np.testing.assert_array_equal(
                    a[field], b[field], err_msg="%s %s: %s vs %s" % (
                        key, field, name, with_prescan[0][1]))


def test_kernels_name():
    assert ft.int8_kernels_name() in ("avx512vnni", "avx2", "scalar")


def kernels_under(level):
    env = dict(os.environ, FAISS_TURBO_SIMD=level)
    r = subprocess.run(
        [sys.executable, "-c",
         "import faiss_turbo as ft; print(ft.int8_kernels_name())"],
        env=env, capture_output=True, text=True, check=True, timeout=60)
    return r.stdout.strip(), r.stderr


def test_level_in_any_case_and_unknown_named():
    """an unknown or differently cased level was silently no cap: a typo
    benchmarked or tested the best kernels"""
    best = ft.int8_kernels_name()
    assert kernels_under("Scalar")[0] == "scalar"
    if best != "scalar":
        assert kernels_under("AVX2")[0] == "avx2"
    name, err = kernels_under("avx-2")
    assert name == best
    assert "FAISS_TURBO_SIMD=avx-2 is not scalar, avx2 or avx512" in err
    assert kernels_under("avx512") == (best, "")
