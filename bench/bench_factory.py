#!/usr/bin/env python3
"""Factory strings side by side, written the way FAISS's benchs/ scripts are
(bench_all_ivf.py, bench_polysemous_sift1m.py): a dataset, one key string
per index, and recall / time columns per search-time parameter set. It only
calls faiss.*: faiss_turbo.install() below is the one line that lets the
same script take TurboQuant strings next to FAISS's.

    PYTHONPATH=build/python /usr/bin/python3 bench/bench_factory.py \\
        --db fashion-mnist --indexkey IVF256,TQmse4 IVF256,SQ4 IVF256,PQ98x8 \\
        --nprobe 1,4,16
    ... --db bigann10k --indexkey TQmse4 TQmse4,RFlat HNSW32,TQmse4 Flat
    ... --db synthetic32_10000_20000_1000 (faiss.contrib.datasets's
        SyntheticDataset: d, nt, nb, nq)
        --indexkey TQmse4 --searchparams rerank_factor=1 rerank_factor=4

Datasets: faiss.contrib.datasets's (sift1M, bigann1M, deep1M, glove,
music-100 when their files are where FAISS looks; synthetic...) and the
real sets of bench/datasets.py (fashion-mnist, bigann10k, FILE.fvecs ...).
Columns: R@k = fraction of queries whose true nearest neighbor is among the
first k results (FAISS's 1-recall@k), inter@10 = 10-recall@10, time per
query over all queries in one batch.
"""

import argparse
import os
import re
import sys
import time

import numpy as np

import faiss
from faiss.contrib import datasets as faiss_datasets
from faiss.contrib.evaluation import knn_intersection_measure

import faiss_turbo

faiss_turbo.install()

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


######################################################
# datasets
######################################################


class LocalDataset(faiss_datasets.Dataset):
    """a set of bench/datasets.py behind FAISS's Dataset interface; it has
    no separate training set: training samples the database"""

    def __init__(self, ds):
        faiss_datasets.Dataset.__init__(self)
        self.name = ds.name
        self.xb, self.xq, self.metric = ds.xb, ds.xq, ds.metric
        self.d = ds.xb.shape[1]
        self.nb, self.nq, self.nt = len(ds.xb), len(ds.xq), len(ds.xb)
        self.gt = None

    def get_queries(self):
        return self.xq

    def get_database(self):
        return self.xb

    def get_train(self, maxtrain=None):
        if maxtrain is None or maxtrain >= self.nb:
            return self.xb
        rs = np.random.RandomState(123)
        return self.xb[np.sort(rs.choice(self.nb, maxtrain, replace=False))]

    def get_groundtruth(self, k=100):
        if self.gt is None or self.gt.shape[1] < k:
            metric = (faiss.METRIC_L2 if self.metric == "L2"
                      else faiss.METRIC_INNER_PRODUCT)
            self.gt = faiss.knn(self.xq, self.xb, k, metric)[1]
        return self.gt[:, :k]


FAISS_DATASETS = {
    "sift1M": lambda: faiss_datasets.DatasetSIFT1M(),
    "bigann1M": lambda: faiss_datasets.DatasetBigANN(nb_M=1),
    "deep1M": lambda: faiss_datasets.DatasetDeep1B(nb=10 ** 6),
    "glove": lambda: faiss_datasets.DatasetGlove(),
    "music-100": lambda: faiss_datasets.DatasetMusic100(),
}


def load_dataset(name, nb=None, nq=None):
    m = re.match(r"synthetic(\d+)_(\d+)_(\d+)_(\d+)$", name)
    if m:
        return faiss_datasets.SyntheticDataset(*map(int, m.groups()))
    if name in FAISS_DATASETS:
        ds = FAISS_DATASETS[name]()
        try:
            ds.get_queries()
        except (OSError, IOError) as e:
            sys.exit("%s: files not found under faiss.contrib.datasets's "
                     "dataset_basedir=%r (%s)"
                     % (name, faiss_datasets.dataset_basedir, e))
        return ds
    import datasets  # bench/datasets.py: the benchmark's real data sets
    try:
        return LocalDataset(datasets.load(name, nb=nb, nq=nq))
    except (OSError, ValueError) as e:
        sys.exit("--db %s: %s" % (name, e))


######################################################
# one index key
######################################################


def code_size(index):
    ivf = faiss.try_extract_index_ivf(index)
    if ivf is not None:
        return ivf.code_size
    try:
        return index.sa_code_size()
    except RuntimeError:
        return None


def skip_polysemous_training(index):
    """the factory turns on polysemous training for PQ with 8-bit codes;
    it only reorders the codes for Hamming pre-filtering, which none of
    these searches use, and takes minutes at high M"""
    ivf = faiss.try_extract_index_ivf(index)
    for sub in (index, ivf):
        if sub is None:
            continue
        sub = faiss.downcast_index(sub)
        if hasattr(sub, "do_polysemous_training"):
            sub.do_polysemous_training = False


def search_param_sets(index, args):
    """the --searchparams strings, or nprobe=... for IVF indexes, or the
    index's defaults"""
    if args.searchparams:
        return args.searchparams
    if args.nprobe and faiss.try_extract_index_ivf(index) is not None:
        return ["nprobe=%d" % p for p in args.nprobe]
    return [""]


def bench_key(key, ds, args, gt):
    metric = (faiss.METRIC_L2 if ds.metric == "L2"
              else faiss.METRIC_INNER_PRODUCT)
    print("============", key)
    index = faiss.index_factory(ds.d, key, metric)
    if not args.polysemous:
        skip_polysemous_training(index)
    t0 = time.time()
    if not index.is_trained:
        index.train(ds.get_train(maxtrain=args.maxtrain))
    t1 = time.time()
    index.add(ds.get_database())
    t2 = time.time()
    cs = code_size(index)
    print("train %.2f s, add %.2f s, code size %s bytes"
          % (t1 - t0, t2 - t1, cs if cs is not None else "?"))
    if args.indexfile:
        faiss.write_index(index, args.indexfile % key.replace(",", "_"))

    xq = ds.get_queries()
    ranks = [r for r in (1, 10, 100) if r <= args.k]
    print("%-28s" % "search params" +
          "".join("   R@%-4d" % r for r in ranks) + "  inter@10   ms/query")
    ps = faiss_turbo.ParameterSpace()  # faiss.ParameterSpace + our names
    rows = []
    for params in search_param_sets(index, args):
        if params:
            ps.set_index_parameters(index, params)
        t0 = time.time()
        _, I = index.search(xq, args.k)
        ms = (time.time() - t0) * 1000 / len(xq)
        recalls = [(I[:, :r] == gt[:, :1]).sum() / len(xq) for r in ranks]
        inter = knn_intersection_measure(I[:, :10], gt[:, :10])
        print("%-28s" % (params or "(defaults)") +
              "".join("   %.4f" % r for r in recalls) +
              "   %.4f %10.4f" % (inter, ms))
        rows.append((key, params, recalls, inter, ms, cs))
        sys.stdout.flush()
    return rows


######################################################
# main
######################################################


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])

    def aa(*args, **kwargs):
        parser.add_argument(*args, **kwargs)

    aa("--db", default="fashion-mnist", help="dataset")
    aa("--indexkey", nargs="+", required=True,
       help="factory strings, FAISS's and TurboQuant's")
    aa("--nprobe", default="1,4,16",
       help="comma-separated nprobe values for IVF indexes")
    aa("--searchparams", nargs="+", default=None,
       help="ParameterSpace strings (e.g. nprobe=4,rerank_factor=2); "
            "replaces --nprobe")
    aa("--k", type=int, default=100, help="results per query")
    aa("--maxtrain", type=int, default=None,
       help="training vectors (default: the dataset's training set)")
    aa("--nb", type=int, default=None, help="database size (local sets)")
    aa("--nq", type=int, default=None, help="queries (local sets)")
    aa("--nt", type=int, default=None, help="OpenMP threads")
    aa("--polysemous", action="store_true",
       help="keep the factory's polysemous training of PQ codes")
    aa("--indexfile", default=None,
       help="write each index to this pattern (%%s = key)")
    args = parser.parse_args()
    args.nprobe = [int(p) for p in args.nprobe.split(",") if p]
    return args


def main():
    args = parse_args()
    if args.nt:
        faiss.omp_set_num_threads(args.nt)
    ds = load_dataset(args.db, args.nb, args.nq)
    print(ds)
    gt = ds.get_groundtruth(k=args.k)
    results = []
    for key in args.indexkey:
        results += bench_key(key, ds, args, gt)
    print("============ summary (R@1, inter@10, ms/query, code bytes)")
    for key, params, recalls, inter, ms, cs in results:
        print("%-22s %-22s %.4f %.4f %9.4f %s"
              % (key, params or "-", recalls[0], inter, ms, cs))


if __name__ == "__main__":
    main()
