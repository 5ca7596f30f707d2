"""Which methods run, as specs for bench/methods.py.

Sides: "ours" runs with Debian's /usr/bin/python3 (faiss_turbo and FAISS
1.7.3), "peers" with the venv's python (FAISS 1.15, turbovec). "bits" is
the nominal bits per coordinate, which groups rows in tables and plots.

Equal code size: FAISS PQ shapes are chosen so that sa_code_size matches
our TQmse<b> code size (IndexPQ: within 2% where any (M, nbits) reaches it;
PQ fast-scan has nbits = 4 and M | d, so it gets the nearest M). The table
prints every method's real bytes per vector.
"""

import math

SQTQMSE_BITS = (1, 2, 3, 4, 8)  # FAISS 1.15 QT_<b>bit_tqmse
SQTQ_BITS = (2, 3, 4, 5)  # QT_<b>bit_tq: (b-1)-bit MSE + 1-bit QJL
TURBOVEC_BITS = (2, 4)


def bits_str(b):
    return str(int(b)) if float(b).is_integer() else str(b)


# ------------------------------------------------------------------- ours


FASTSCAN_BITS = (1, 1.5, 2, 4)  # IndexTurboQuantFastScan's widths


def our_keys(bits, variants):
    """TurboQuant factory keys: variants from mse, prod, mse_c, prod_c, and
    the fast-scan layout mse_fs, mse_cfs (c = centered)."""
    keys = []
    for b in bits:
        for v in variants:
            name, _, suffix = v.partition("_")
            fs = suffix.endswith("fs")
            centered = "c" in suffix
            if name == "prod" and b < 2:
                continue  # PROD spends one of its bits on QJL
            if fs and (name != "mse" or b not in FASTSCAN_BITS):
                continue  # the fast-scan layout takes TQmse at these widths
            keys.append(f"TQ{name}{bits_str(b)}{'c' if centered else ''}"
                        f"{'fs' if fs else ''}")
    return keys


def ours(keys):
    return [{"key": k, "family": "ours", "side": "ours", "lib": "faiss-turbo",
             "build": k, "bits": tq_bits(k)} for k in keys]


def ours_prescan(keys, lengths):
    """each flat key again with the sign pre-scan keeping `length` codes a
    query (SearchParametersTurboQuant.prescan): key TQmse4,pre500"""
    return [{"key": f"{k},pre{n}", "family": "ours", "side": "ours",
             "lib": "faiss-turbo", "build": k, "bits": tq_bits(k),
             "params": {"prescan": n}}
            for k in keys if k.startswith("TQ") for n in lengths]


def ours_ivf(bits, nlist, nprobes=(8, 32)):
    """IVF<nlist>,TQmse<b> (row lists) and IVF<nlist>,TQmse<b>fs (lists in
    blocks, at the fast-scan widths) at the nprobes the FAISS IVF peers use"""
    specs = []
    builds = [(b, f"IVF{nlist},TQmse{bits_str(b)}") for b in bits]
    builds += [(b, f"IVF{nlist},TQmse{bits_str(b)}fs") for b in bits
               if b in FASTSCAN_BITS]
    for b, build in builds:
        for npr in nprobes:
            specs.append({"key": f"{build},np{npr}", "family": "ours",
                          "side": "ours", "lib": "faiss-turbo", "build": build,
                          "bits": b, "params": {"nprobe": npr},
                          "train_n": 50000})
    return specs


def tq_bits(key):
    """bits of a TQ key: the digits after "TQ" (IVF256,TQmse4 -> 4)"""
    tail = key[key.rindex("TQ"):].split(",")[0]
    digits = "".join(c for c in tail if c.isdigit() or c == ".")
    return float(digits)


def our_code_size(d, key, metric):
    """sa_code_size of our index, or the nominal d*b/8 without the module."""
    try:
        import faiss
        import faiss_turbo

        m = faiss.METRIC_L2 if metric == "L2" else faiss.METRIC_INNER_PRODUCT
        return int(faiss_turbo.index_factory(d, key, m).sa_code_size())
    except Exception:  # noqa: BLE001 - module not built yet: nominal size
        return int(math.ceil(d * tq_bits(key) / 8))


# ------------------------------------------------------- Debian FAISS 1.7.3


def pq_shape(d, target, prefer_nbits=8, nbits_choices=range(4, 13), tol=0.02):
    """(M, nbits) with M | d whose M*nbits/8 bytes is within tol of target,
    preferring nbits near prefer_nbits (8 is FAISS's usual PQ); else the
    nearest size (M | d and nbits <= 12 cannot reach every size)."""
    cands = []
    for m in (m for m in range(1, d + 1) if d % m == 0):
        for nb in nbits_choices:
            size = math.ceil(m * nb / 8)
            cands.append((abs(size - target) / target, abs(nb - prefer_nbits), m, nb))
    within = [c for c in cands if c[0] <= tol + 1e-9]
    best = min(within, key=lambda c: (c[1], c[0])) if within else min(cands)
    return best[2], best[3]


def debian_faiss(d, targets, sq=True, pq_train_n=20000, pq_nbits=8):
    """SQ4/SQ8 and IndexPQ at each target size {bits: bytes}."""
    specs = []
    if sq:
        specs += [{"key": f"SQ{b} (1.7)", "build": f"SQ{b}", "bits": b} for b in (4, 8)]
    for b, target in sorted(targets.items()):
        m, nb = pq_shape(d, target, prefer_nbits=pq_nbits)
        # "np": no polysemous training, which the factory otherwise runs
        # (minutes at nbits 8) for a search mode we do not use
        specs.append({"key": f"PQ{m}x{nb} (1.7)", "build": f"PQ{m}x{nb}np", "bits": b,
                      "train_n": pq_train_n, "target_bytes": target})
    for s in specs:
        s.update(family="faiss", side="ours", lib="faiss 1.7.3")
    return specs


def flat(side):
    lib = "faiss 1.7.3" if side == "ours" else "faiss 1.15"
    return {"key": f"Flat ({'1.7' if side == 'ours' else '1.15'})", "family": "faiss",
            "side": side, "lib": lib, "build": "Flat", "bits": 32}


# ------------------------------------------------------------ peers (venv)


def fastscan_m(d, target):
    """M | d with M*4/8 bytes nearest to target (PQ<M>x4fs)."""
    return min((m for m in range(1, d + 1) if d % m == 0),
               key=lambda m: (abs(m / 2 - target), -m))


def peers_faiss(d, targets, metric, ivf_nlist=0, nprobes=(8, 32), pq_train_n=20000):
    """FAISS 1.15 at each {bits: target bytes}; IVF versions if ivf_nlist."""
    specs = []
    for b, target in sorted(targets.items()):
        specs += peers_at_bits(d, b, target)
        # plain PQ too: fast-scan quantizes its look-up tables to 8 bits and
        # sums them in 16, which fails at large M (PQ784x4fs on 784-d
        # Fashion-MNIST: R@1 0.19 where PQ784x4 reaches 0.93)
        m, nb = pq_shape(d, target)
        specs.append({"key": f"PQ{m}x{nb}", "build": f"PQ{m}x{nb}np", "bits": b,
                      "train_n": pq_train_n, "target_bytes": target})
        if ivf_nlist:
            specs += peers_ivf(d, b, target, ivf_nlist, nprobes)
    specs += [{"key": f"SQ{b} (1.15)", "build": f"SQ{b}", "bits": b} for b in (4, 8)]
    for s in specs:
        s.update(family="faiss", side="peers", lib="faiss 1.15")
    return specs


def peers_at_bits(d, b, target):
    specs = [{"key": f"PQ{fastscan_m(d, target)}x4fs", "bits": b, "target_bytes": target,
              "build": f"PQ{fastscan_m(d, target)}x4fs"}]
    if float(b).is_integer():
        b = int(b)
        rabitq = "" if b == 1 else str(b)
        specs += [{"key": f"RaBitQ{rabitq}", "build": f"RaBitQ{rabitq}", "bits": b},
                  {"key": f"RaBitQfs{rabitq}", "build": f"RaBitQfs{rabitq}", "bits": b}]
        # FAISS's TurboQuant scalar codes: no rotation and no norm of their
        # own, so a random rotation in front and unit-scaled data
        if b in SQTQMSE_BITS:
            specs.append({"key": f"RR,SQtqmse{b}", "build": f"RR{d},SQtqmse{b}",
                          "bits": b, "prep": "unit_scale"})
        if b in SQTQ_BITS:
            specs.append({"key": f"RR,SQtq{b}", "build": f"RR{d},SQtq{b}",
                          "bits": b, "prep": "unit_scale"})
    return specs


def peers_ivf(d, b, target, nlist, nprobes):
    m = fastscan_m(d, target)
    builds = [(f"IVF{nlist},PQ{m}x4fs", None)]
    if float(b).is_integer() and b > 1:
        builds.append((f"IVF{nlist},RaBitQfs{int(b)}", None))
    specs = []
    for build, prep in builds:
        for npr in nprobes:
            specs.append({"key": f"{build},np{npr}", "build": build, "bits": b,
                          "params": {"nprobe": npr}, "train_n": 50000, "prep": prep})
    return specs


def turbovec(bits, metric, calibrated=True):
    """turbovec.TurboQuantIndex at 2 and 4 bits, plain and TQ+-calibrated."""
    prep = "mips" if metric == "L2" else "pad8"
    specs = []
    for b in (b for b in bits if b in TURBOVEC_BITS):
        for cal in (False, True) if calibrated else (False,):
            specs.append({"key": f"turbovec{int(b)}{'+cal' if cal else ''}",
                          "family": "turbovec", "side": "peers", "lib": "turbovec",
                          "build": int(b), "bits": b, "prep": prep,
                          "params": {"calibrate": cal}})
    return specs
