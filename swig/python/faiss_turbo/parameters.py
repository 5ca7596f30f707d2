"""ParameterSpace that also knows the search-time parameters of
IndexTurboQuant and IndexIVFTurboQuant, by name, wherever they sit inside
FAISS's wrappers.

    ps = faiss_turbo.ParameterSpace()        # instead of faiss.ParameterSpace
    ps.set_index_parameters(index, "nprobe=16,rerank_factor=2")
    ps.initialize(index); ops = ps.explore(index, xq, crit)

Our names set the search_defaults of IndexTurboQuant and IndexIVFTurboQuant
(SearchParametersTurboQuant.h):
  scan_mode      0 = exact estimator, 1 = int8 scan with exact re-scoring
  rerank_factor  int8 candidates re-scored exactly, as a multiple of k
  prescan        flat indexes only: codes each query keeps after a first
                 pass over the signs of the coordinates (0: off)
Every other name goes to faiss.ParameterSpace (nprobe, efSearch,
k_factor_rf, quantizer_*, ...), which handles our IVF and HNSW indexes as
FAISS's own. FAISS's C++ cannot call back into Python, so the methods that
go through names (set_index_parameters, explore) are redone here when one
of our names is involved.
"""

import time

import numpy as np

import faiss
from faiss import class_wrappers

import faiss_turbo as _ft

__all__ = ["ParameterSpace", "TURBO_PARAMETERS", "turbo_flat_indexes",
           "turbo_indexes"]

# names, and the values initialize() explores, cheapest first (autotune
# assumes each range goes from fast / inaccurate to slow / accurate)
TURBO_PARAMETERS = {
    "rerank_factor": (0, 1, 2, 4, 8, 16),
    "scan_mode": (),  # settable; not explored (its order is not monotone)
    "prescan": (),  # settable, flat indexes only; not explored (0 is off)
}


def turbo_indexes(index):
    """the IndexTurboQuant(FastScan) and IndexIVFTurboQuant objects whose
    search() serves index's search: index itself, or through IndexIDMap(2),
    IndexPreTransform, the base of IndexRefine, the shards / replicas of
    IndexShards / IndexReplicas"""
    index = _ft.downcast_index(index)
    if isinstance(index, (_ft.IndexTurboQuant, _ft.IndexTurboQuantFastScan,
                          _ft.IndexIVFTurboQuant)):
        return [index]
    if isinstance(index, (faiss.IndexIDMap, faiss.IndexIDMap2,
                          faiss.IndexPreTransform)):
        return turbo_indexes(index.index)
    if isinstance(index, faiss.IndexRefine):
        return turbo_indexes(index.base_index)
    if isinstance(index, (faiss.IndexShards, faiss.IndexReplicas)):
        found = []
        for i in range(index.count()):
            found += turbo_indexes(index.at(i))
        return found
    return []


def turbo_flat_indexes(index):
    """the IndexTurboQuant objects among turbo_indexes(index)"""
    return [i for i in turbo_indexes(index)
            if isinstance(i, _ft.IndexTurboQuant)]


def _set_turbo(index, name, val):
    targets = turbo_indexes(index)
    if not targets:
        raise RuntimeError(
            "ParameterSpace::set_index_parameter: could not set parameter "
            "%s (no IndexTurboQuant or IndexIVFTurboQuant searched by this "
            "index)" % name)
    val = float(val)
    if name == "scan_mode":
        if val not in (_ft.TQ_SCAN_EXACT, _ft.TQ_SCAN_INT8):
            raise RuntimeError(
                "scan_mode=%g: must be %d (exact) or %d (int8)"
                % (val, _ft.TQ_SCAN_EXACT, _ft.TQ_SCAN_INT8))
    elif name == "prescan":
        targets = [i for i in targets
                   if not isinstance(i, _ft.IndexIVFTurboQuant)]
        if not targets:
            raise RuntimeError(
                "ParameterSpace::set_index_parameter: could not set "
                "parameter prescan (an option of IndexTurboQuant and "
                "IndexTurboQuantFastScan; none is searched by this index)")
        if not (np.isfinite(val) and val >= 0 and val == int(val)
                and val < 2 ** 31):
            raise RuntimeError("prescan=%g must be an integer >= 0" % val)
    elif not (np.isfinite(val) and val >= 0):
        raise RuntimeError("rerank_factor=%g must be >= 0" % val)
    for tq_index in targets:
        setattr(tq_index.search_defaults, name,
                val if name == "rerank_factor" else int(val))


def _turbo_pairs(description):
    """the (name, value) of our names in FAISS's "name=val,name=val"
    (separators ' ' and ','), or None when it names none of them, in which
    case FAISS parses the string itself"""
    pairs, ours = [], False
    for tok in description.replace(" ", ",").split(","):
        if not tok:
            continue
        name, _, val = tok.partition("=")
        ours = ours or name in TURBO_PARAMETERS
        try:
            pairs.append((name, float(val)))
        except ValueError:
            pairs.append((name, None))
    if not ours:
        return None
    for name, val in pairs:
        if val is None:
            raise RuntimeError("could not interpret parameters %s" % name)
    return pairs


class ParameterSpace(faiss.ParameterSpace):
    """faiss.ParameterSpace plus TURBO_PARAMETERS (see the module doc)"""

    def set_index_parameter(self, index, name, val):
        if name in TURBO_PARAMETERS:
            if self.verbose > 1:
                print("    set_index_parameter %s=%g" % (name, val))
            _set_turbo(index, name, val)
        else:
            faiss.ParameterSpace.set_index_parameter(self, index, name, val)

    def set_index_parameters(self, index, combination):
        """combination: "name=val,..." or a combination number"""
        description = combination
        if not isinstance(combination, str):
            description = self.combination_name(int(combination))
        pairs = _turbo_pairs(description)
        if pairs is None:
            faiss.ParameterSpace.set_index_parameters(self, index, combination)
            return
        for name, val in pairs:
            self.set_index_parameter(index, name, val)

    def initialize(self, index):
        faiss.ParameterSpace.initialize(self, index)
        if turbo_indexes(index):
            for name, values in TURBO_PARAMETERS.items():
                if values:
                    pr = self.add_range(name)
                    pr.values.clear()
                    for v in values:
                        pr.values.push_back(v)

    def _has_turbo_range(self):
        if not self.n_combinations():
            return False
        return _turbo_pairs(self.combination_name(0)) is not None

    def explore(self, index, xq, crit):
        """as faiss.ParameterSpace.explore (operating points of the
        combinations, pruned by what the points found so far make
        useless); run here when a range has one of our names"""
        if not self._has_turbo_range():
            return faiss.ParameterSpace.explore(self, index, xq, crit)
        assert xq.shape == (crit.nq, index.d)
        xq = np.ascontiguousarray(xq, dtype="float32")
        ops = faiss.OperatingPoints()
        n_comb = self.n_combinations()
        for cno in self._exploration_order(n_comb):
            name = self.combination_name(cno)
            if self.n_experiments and self._useless(cno, ops):
                if self.verbose:
                    print("  cno=%d %s skip" % (cno, name))
                continue
            self.set_index_parameters(index, cno)
            D, I, t = self._timed_search(index, xq, crit.nnn)
            # the C++ signature: faiss wraps evaluate() for numpy on the
            # base class only
            perf = crit.evaluate(faiss.swig_ptr(D), faiss.swig_ptr(I))
            keep = ops.add(perf, t, name, cno)
            if self.verbose:
                print("  cno=%d %s perf=%.3f t=%.3f s %s"
                      % (cno, name, perf, t, "*" if keep else ""))
        return ops

    def _exploration_order(self, n_comb):
        """all when n_experiments == 0; else at most n_experiments, the
        cheapest and the most expensive first (as FAISS)"""
        n_exp = int(self.n_experiments)
        if n_exp == 0 or n_comb <= 2:
            return range(n_comb)
        rest = np.random.RandomState(1234).permutation(n_comb - 2) + 1
        return [0, n_comb - 1] + [int(c) for c in rest[:max(n_exp - 2, 0)]]

    def _useless(self, cno, ops):
        """True if a point already measured is at least as accurate and no
        slower than cno can be"""
        lower_bound_t, upper_bound_perf = 0.0, 1.0
        pts = ops.all_pts
        for i in range(pts.size()):
            op = pts.at(i)
            if self.combination_ge(cno, op.cno):
                lower_bound_t = max(lower_bound_t, op.t)
            if self.combination_ge(op.cno, cno):
                upper_bound_perf = min(upper_bound_perf, op.perf)
        return ops.t_for_perf(upper_bound_perf) <= lower_bound_t

    def _timed_search(self, index, xq, k):
        """searches by batches of batchsize until min_test_duration"""
        t0, nrun = time.time(), 0
        bs = max(int(self.batchsize), 1)
        while True:
            parts = [index.search(xq[q0:q0 + bs], k)
                     for q0 in range(0, len(xq), bs)]
            nrun += 1
            t = time.time() - t0
            if t >= self.min_test_duration:
                break
        D = np.ascontiguousarray(np.vstack([p[0] for p in parts]))
        I = np.ascontiguousarray(np.vstack([p[1] for p in parts]))
        return D, I, t / nrun


class_wrappers.handle_SearchParameters(_ft.SearchParametersTurboQuant)
class_wrappers.handle_SearchParameters(_ft.SearchParametersIVFTurboQuant)
