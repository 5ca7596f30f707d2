"""One adapter per library, all with the same face: train / add / search /
code_size / set_threads. Used by bench/worker.py, under Debian's python
(faiss_turbo, FAISS 1.7.3) or the peers venv's (FAISS 1.15, turbovec).

A spec (a dict, made by bench/catalog.py) names the method:
  family  "ours" | "faiss" | "turbovec"
  build   factory string (ours, faiss) or bit width (turbovec)
  prep    how the vectors are prepared (see prepare()); searches must rank
          exactly as the original metric would on unquantized vectors
  params  run-time parameters (faiss ParameterSpace names: nprobe, ...)
"""

import numpy as np


def metric_code(faiss, metric):
    return faiss.METRIC_L2 if metric == "L2" else faiss.METRIC_INNER_PRODUCT


class FaissMethod:
    """Any faiss.Index (FAISS's own, or ours: faiss_turbo indexes are faiss
    Index subclasses with the same numpy methods)."""

    can_set_threads = True

    def __init__(self, spec, d, metric):
        import faiss

        self.faiss = faiss
        self.index = self.make(spec, d, metric_code(faiss, metric))
        ps = self.parameter_space()
        for name, value in spec.get("params", {}).items():
            ps.set_index_parameter(self.index, name, value)

    def make(self, spec, d, metric):
        return self.faiss.index_factory(d, spec["build"], metric)

    def parameter_space(self):
        return self.faiss.ParameterSpace()

    def train(self, x):
        if not self.index.is_trained:
            self.index.train(x)

    def add(self, x):
        self.index.add(x)

    def search(self, x, k):
        return self.index.search(x, k)[1]

    def code_size(self, n):
        return float(self.index.sa_code_size())

    def set_threads(self, n):
        self.faiss.omp_set_num_threads(n)


class OursMethod(FaissMethod):
    def make(self, spec, d, metric):
        try:
            import faiss_turbo
        except ImportError as e:
            raise RuntimeError(
                    "faiss_turbo is not importable: build it (make build) and "
                    f"run with PYTHONPATH=<build>/python ({e})")
        return faiss_turbo.index_factory(d, spec["build"], metric)

    def parameter_space(self):
        import faiss_turbo

        return faiss_turbo.ParameterSpace()  # FAISS's names and ours


class TurbovecMethod:
    """turbovec.TurboQuantIndex: inner product only, d a multiple of 8, its
    thread pool (rayon) sized once per process by RAYON_NUM_THREADS."""

    can_set_threads = False

    def __init__(self, spec, d, metric):
        import turbovec

        self.index = turbovec.TurboQuantIndex(dim=d, bit_width=int(spec["build"]))
        self.calibrate = spec.get("params", {}).get("calibrate", False)
        self.turbovec = turbovec

    def train(self, x):
        # TQ+ calibration wants a uniform random sample of ~1024 rows
        if self.calibrate:
            rng = np.random.default_rng(0)
            self.index.calibrate(x[rng.choice(len(x), min(len(x), 1024), replace=False)])

    def add(self, x):
        self.index.add(x)
        self.index.prepare()  # the first search must not pay the warm-up

    def search(self, x, k):
        return self.index.search(x, k)[1].astype(np.int64)

    def code_size(self, n):
        # bytes the serialized index grows by per vector: codes, norm and
        # whatever per-vector scalars it keeps
        full = len(self.index.to_bytes())
        one = self.turbovec.TurboQuantIndex(dim=self.index.dim,
                                            bit_width=self.index.bit_width)
        return (full - len(one.to_bytes())) / n

    def set_threads(self, n):
        raise RuntimeError("turbovec threads are set per process (RAYON_NUM_THREADS)")


FAMILIES = {"ours": OursMethod, "faiss": FaissMethod, "turbovec": TurbovecMethod}


def make_method(spec, d, metric):
    if spec["family"] not in FAMILIES:
        raise ValueError(f"unknown family {spec['family']!r}")
    return FAMILIES[spec["family"]](spec, d, metric)


# ----------------------------------------------------------- preparations


def prepare(prep, xb, xq):
    """Returns (xb', xq') on which the method ranks as the original
    metric ranks (xb, xq). Preparations exist because some peers only
    handle some inputs:

      none       unchanged
      unit_scale divide both sides by the median base norm: FAISS's SQtq*
                 codebooks assume unit vectors and store no norm; a global
                 scale keeps every L2 and IP ranking
      pad8       zero columns up to a multiple of 8 (turbovec's rule)
      mips       L2 search as inner product, for turbovec (IP only; the
                 method then runs with metric IP):
                 <[q, c], [x, -|x|^2/(2c)]> = <q, x> - |x|^2/2, whose
                 largest value is the L2 nearest neighbour; c balances the
                 appended coordinate against the others (see mips_c)
    """
    if prep in (None, "none"):
        return xb, xq
    if prep == "unit_scale":
        s = np.float32(np.median(np.linalg.norm(xb, axis=1)))
        return xb / s, xq / s
    if prep == "pad8":
        return pad8(xb), pad8(xq)
    if prep == "mips":
        c = mips_c(xb, xq)
        nb = (xb.astype(np.float64) ** 2).sum(1)
        xb2 = np.hstack([xb, (-nb / (2 * c))[:, None].astype(np.float32)])
        xq2 = np.hstack([xq, np.full((len(xq), 1), c, dtype=np.float32)])
        return pad8(xb2), pad8(xq2)
    raise ValueError(f"unknown preparation {prep!r}")


def mips_c(xb, xq):
    """The quantization error of a code scales with |x'| and is read
    through |q'|; |x'||q'| is smallest near c^2 = |x||q|/2 (medians)."""
    nx = np.median(np.linalg.norm(xb, axis=1))
    nq = np.median(np.linalg.norm(xq, axis=1))
    return float(np.sqrt(max(nx * nq / 2, 1e-12)))


def pad8(x):
    extra = -x.shape[1] % 8
    if not extra:
        return np.ascontiguousarray(x, dtype=np.float32)
    return np.ascontiguousarray(
            np.hstack([x, np.zeros((len(x), extra), dtype=x.dtype)]), dtype=np.float32)
