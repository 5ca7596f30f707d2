/**
 * Timings of the flat index's CPU paths on random unit vectors:
 *   - search, exact float scan vs int8 scan (batched and one query at a
 *     time), ms per query, and recall@10 of the int8 path against the exact
 *     estimator's results;
 *   - bytes of codes per second at nq = 1 against a plain memory-read loop
 *     over a buffer of the same size (both single-threaded);
 *   - the batched kernel alone (tile_dots: 32 decoded codes x 32 queries,
 *     the scan's tile, in cache), ns per (code, query) and per 64
 *     coordinates, 1 thread: the integer products without streaming the
 *     codes, selection or re-scoring;
 *   - AVX2's int8 kernels against AVX-512 VNNI's (where the CPU has them)
 *     in the same scan, and AVX2's fast-scan table kernel against
 *     AVX-512's (nq = 1), interleaved runs in this process, 1 thread: ms per
 *     query batched and at nq = 1, and the median of the per-run ratios;
 *   - the fast-scan index (same codes in blocks, table lookups) against
 *     the int8 scan, interleaved runs in this process, 1 thread: ms per
 *     query batched and at nq = 1, their ratio, recall@10 of both against
 *     the exact estimator, and the fast-scan's nq=1 bytes per second;
 *   - the sign pre-scan (SearchParametersTurboQuant::prescan) against the
 *     plain int8 scan, same queries, at each --threads, interleaved
 *     runs: ms per
 *     query for the batch and for batches of 32 (the smallest that take
 *     the pre-scan), their ratios, and how many of the plain scan's top
 *     10 the pre-scan's keeps (over the whole batch); and the pre-scan
 *     with and without its first pass's seeds, 1 thread (the same
 *     results, checked);
 *   - encode, vectors per second.
 * Each figure is the median of --runs runs, in wall time and in CPU time of
 * the process divided by the threads (the CPU figure stays meaningful on a
 * machine shared with other work, the wall one does not). Usage:
 *   bench_kernels [--d 1536] [--nb 100000] [--nq 1000] [--bits 4,2]
 *                 [--threads 1,2] [--runs 5] [--exact-nq 20]
 *                 [--single-nq 20] [--encode-d 128,1536] [--bw-only 0]
 *                 [--prescan 250,500,1000] [--prescan-only 0]
 * --encode-d 0 skips encode, --nb 0 search; --bw-only 1 only compares
 * bandwidths, --prescan-only 1 only times the pre-scan. FAISS_TURBO_SIMD=scalar
 * in the environment times the portable kernels, FAISS_TURBO_SIMD=avx2 AVX2's.
 */
#include <omp.h>
#include <time.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include <faiss_turbo/IndexTurboQuant.h>
#include <faiss_turbo/IndexTurboQuantFastScan.h>
#include <faiss_turbo/SearchParametersTurboQuant.h>
#include <faiss_turbo/impl/scan_int8.h>
#include <faiss_turbo/impl/scan_lut.h>
#include <faiss_turbo/impl/scan_prescan.h>
#include <faiss_turbo/impl/simd/int8_kernels.h>
#include <faiss_turbo/impl/simd/sign_kernels.h>

using namespace faiss_turbo;

namespace {

struct Options {
    size_t d = 1536, nb = 100000, nq = 1000, exact_nq = 20, single_nq = 20;
    std::vector<float> bits = {4, 2};
    std::vector<int> threads = {1, 2};
    std::vector<size_t> encode_d = {128, 1536};
    int runs = 5;
    int bw_only = 0; ///< only the bandwidth comparison
    std::vector<float> prescan = {250, 500, 1000};
    int prescan_only = 0; ///< only the pre-scan comparison
};

std::vector<float> parse_floats(const char* s) {
    std::vector<float> r;
    for (const char* p = s; *p;) {
        char* e;
        r.push_back(strtof(p, &e));
        p = *e ? e + 1 : e;
    }
    return r;
}

Options parse(int argc, char** argv) {
    Options o;
    for (int i = 1; i + 1 < argc; i += 2) {
        std::string a = argv[i];
        const char* v = argv[i + 1];
        auto fl = parse_floats(v);
        if (a == "--d") {
            o.d = atol(v);
        } else if (a == "--nb") {
            o.nb = atol(v);
        } else if (a == "--nq") {
            o.nq = atol(v);
        } else if (a == "--exact-nq") {
            o.exact_nq = atol(v);
        } else if (a == "--single-nq") {
            o.single_nq = atol(v);
        } else if (a == "--runs") {
            o.runs = atoi(v);
        } else if (a == "--bits") {
            o.bits = fl;
        } else if (a == "--threads") {
            o.threads.assign(fl.begin(), fl.end());
        } else if (a == "--bw-only") {
            o.bw_only = atoi(v);
        } else if (a == "--prescan") {
            o.prescan = fl;
        } else if (a == "--prescan-only") {
            o.prescan_only = atoi(v);
        } else if (a == "--encode-d") {
            o.encode_d.assign(fl.begin(), fl.end());
        } else {
            fprintf(stderr, "unknown option %s\n", a.c_str());
            exit(1);
        }
    }
    return o;
}

double now_s() {
    return std::chrono::duration<double>(
                   std::chrono::steady_clock::now().time_since_epoch())
            .count();
}

double cpu_s() {
    timespec t;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return t.tv_sec + 1e-9 * t.tv_nsec;
}

struct Timing {
    double wall, cpu; ///< seconds; cpu: process CPU time / threads
};

/// medians of the wall and CPU times of f over runs
Timing median_time(int runs, const std::function<void()>& f) {
    std::vector<double> w, c;
    for (int r = 0; r < runs; r++) {
        double t0 = now_s(), c0 = cpu_s();
        f();
        w.push_back(now_s() - t0);
        c.push_back((cpu_s() - c0) / omp_get_max_threads());
    }
    std::sort(w.begin(), w.end());
    std::sort(c.begin(), c.end());
    return {w[w.size() / 2], c[c.size() / 2]};
}

/// the median of a few timings
double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
}

std::vector<float> random_unit(size_t n, size_t d, uint64_t seed) {
    std::vector<float> x(n * d);
#pragma omp parallel
    {
        int nt = omp_get_num_threads(), t = omp_get_thread_num();
        std::mt19937_64 rng(seed * 1000 + t);
        std::normal_distribution<float> g;
        size_t i0 = n * t / nt, i1 = n * (t + 1) / nt;
        for (size_t i = i0; i < i1; i++) {
            float* v = x.data() + i * d;
            double s = 0;
            for (size_t j = 0; j < d; j++) {
                v[j] = g(rng);
                s += (double)v[j] * v[j];
            }
            for (size_t j = 0; j < d; j++) {
                v[j] /= std::sqrt(s);
            }
        }
    }
    return x;
}

/// bytes per second of one thread summing a buffer larger than the caches
/// Bytes: std::vector<uint8_t>, or FAISS's MaybeOwnedVector (codes, 1.11+)
template <class Bytes> double read_bandwidth(const Bytes& buf, int runs) {
    volatile uint64_t sink = 0;
    size_t nw = buf.size() / 8;
    const uint64_t* w = (const uint64_t*)buf.data();
    Timing t = median_time(runs, [&] {
        uint64_t a0 = 0, a1 = 0, a2 = 0, a3 = 0;
        for (size_t i = 0; i + 4 <= nw; i += 4) {
            a0 += w[i];
            a1 += w[i + 1];
            a2 += w[i + 2];
            a3 += w[i + 3];
        }
        sink = sink + a0 + a1 + a2 + a3;
    });
    return nw * 8 / t.wall;
}

struct Result {
    std::vector<float> D;
    std::vector<idx_t> I;
};

Result
search(const faiss::Index& idx,
       const float* xq,
       size_t nq,
       int mode,
       float rf,
       int prescan = 0) {
    const size_t k = 10;
    Result r;
    r.D.resize(nq * k);
    r.I.resize(nq * k);
    SearchParametersTurboQuant p;
    p.scan_mode = mode;
    p.rerank_factor = rf;
    p.prescan = prescan;
    idx.search(nq, xq, k, r.D.data(), r.I.data(), &p);
    return r;
}

/// single thread, nq = 1: bytes of codes per second against the read loop
/// over the same buffer, interleaved runs; medians and bests (the best is
/// the figure least disturbed by other work on the machine)
template <class Bytes>
void bench_bandwidth(
        const Options& o,
        const faiss::Index& idx,
        const Bytes& codes,
        const char* name,
        const std::vector<float>& xq) {
    omp_set_num_threads(1);
    const size_t n1 = std::min(o.single_nq, o.nq);
    const double bytes = codes.size();
    std::vector<double> rd, sc;
    for (int r = 0; r < 2 * o.runs; r++) {
        rd.push_back(read_bandwidth(codes, 1));
        Timing t = median_time(1, [&] {
            for (size_t q = 0; q < n1; q++) {
                search(idx, xq.data() + q * o.d, 1, TQ_SCAN_INT8, 0);
            }
        });
        sc.push_back(bytes * n1 / t.wall);
    }
    std::sort(rd.begin(), rd.end());
    std::sort(sc.begin(), sc.end());
    double rm = rd[rd.size() / 2], sm = sc[sc.size() / 2];
    printf("1 thread, nq=1, %.1f MB of codes: read loop median %.2f GB/s "
           "best %.2f; %s scan median %.2f GB/s best %.2f: %.0f%% "
           "(medians) / %.0f%% (bests)\n",
           bytes / 1e6,
           rm / 1e9,
           rd.back() / 1e9,
           name,
           sm / 1e9,
           sc.back() / 1e9,
           100 * sm / rm,
           100 * sc.back() / rd.back());
}

double recall(const Result& a, const Result& ref, size_t nq) {
    const size_t k = 10;
    size_t hit = 0;
    for (size_t q = 0; q < nq; q++) {
        for (size_t i = 0; i < k; i++) {
            for (size_t j = 0; j < k; j++) {
                hit += a.I[q * k + i] == ref.I[q * k + j] &&
                       a.I[q * k + i] >= 0;
            }
        }
    }
    return (double)hit / (nq * k);
}

/// tile_dots on one tile of 32 codes x 32 queries (the scan's sizes: in
/// L1 up to d = 384, in L2 above), best of 20 rounds
void bench_tile_dots(const IndexTurboQuant& idx) {
    Int8Codec codec(idx.tq, true);
    const Int8Layout& L = codec.layout;
    const Int8Kernels& K = int8_kernels_best();
    std::vector<uint8_t> tile(32 * L.row);
    std::vector<int8_t> q8(32 * L.row);
    std::mt19937 rng(3);
    for (auto& t : tile) {
        t = rng() % (2 * kInt8Offset + 1);
    }
    for (auto& q : q8) {
        q = (int8_t)((int)(rng() % (2 * kInt8QueryMax + 1)) - kInt8QueryMax);
    }
    std::vector<int32_t> out(32 * 32 * L.nseg);
    const int reps = std::max<int>(10, (int)(2e6 / L.row));
    double best = 1e30;
    for (int r = 0; r < 20; r++) {
        double t0 = now_s();
        for (int k = 0; k < reps; k++) {
            K.tile_dots(L, tile.data(), 32, q8.data(), 32, out.data());
        }
        best = std::min(best, (now_s() - t0) / reps / (32 * 32));
    }
    printf("tile_dots (%s) alone, 32 codes x 32 queries in cache: %.2f ns per "
           "(code, query), %.3f ns per 64 coordinates\n",
           K.name,
           best * 1e9,
           best * 1e9 * 64 / L.row);
}

/// the fast-scan index on the same codes against the int8 scan, 1 thread,
/// default re-scoring, interleaved runs
void bench_fastscan(
        const Options& o,
        const IndexTurboQuant& idx,
        const std::vector<float>& xq,
        const Result& ref) {
    IndexTurboQuantFastScan fs(idx);
    const size_t ne = std::min(o.exact_nq, o.nq);
    const size_t n1 = std::min(o.single_nq, o.nq);
    const float rf = kTQDefaultRerankFactor;
    printf("recall@10 vs exact (%zd queries), rerank %g: int8 %.4f, "
           "fast-scan %.4f; without re-scoring: int8 %.4f, fast-scan %.4f\n",
           ne,
           rf,
           recall(search(idx, xq.data(), ne, TQ_SCAN_INT8, rf), ref, ne),
           recall(search(fs, xq.data(), ne, TQ_SCAN_INT8, rf), ref, ne),
           recall(search(idx, xq.data(), ne, TQ_SCAN_INT8, 0), ref, ne),
           recall(search(fs, xq.data(), ne, TQ_SCAN_INT8, 0), ref, ne));
    omp_set_num_threads(1);
    // batched: the int8 scan of the flat index, the fast-scan index (its
    // own choice) and its table scan alone
    TQQueries qb;
    fs.prepare_queries(o.nq, xq.data(), qb);
    Result tab;
    tab.D.resize(o.nq * 10);
    tab.I.resize(o.nq * 10);
    std::vector<std::function<void()>> batched = {
            [&] { search(idx, xq.data(), o.nq, TQ_SCAN_INT8, rf); },
            [&] { search(fs, xq.data(), o.nq, TQ_SCAN_INT8, rf); },
            [&] {
                scan_knn_lut(
                        fs.tq,
                        fs.codes,
                        qb,
                        10,
                        rf,
                        tab.D.data(),
                        tab.I.data(),
                        nullptr);
            }};
    const faiss::Index* both[2] = {&idx, &fs};
    std::vector<double> tb[3], t1[2];
    for (int r = 0; r < o.runs; r++) {
        for (int m = 0; m < 3; m++) {
            tb[m].push_back(median_time(1, batched[m]).wall / o.nq);
        }
        for (int m = 0; m < 2; m++) {
            t1[m].push_back(
                    median_time(
                            1,
                            [&] {
                                for (size_t q = 0; q < n1; q++) {
                                    search(*both[m],
                                           xq.data() + q * o.d,
                                           1,
                                           TQ_SCAN_INT8,
                                           rf);
                                }
                            })
                            .wall /
                    n1);
        }
    }
    double b0 = median(tb[0]), b1 = median(tb[1]), b2 = median(tb[2]);
    double s0 = median(t1[0]), s1 = median(t1[1]);
    printf("1 thread, rerank %g, ms/query: batch of %zd: int8 %.3f, "
           "fast-scan %.3f (%s), its tables alone %.3f; nq=1: int8 %.3f, "
           "fast-scan %.3f; fast-scan speed-up %.2fx batched (tables alone "
           "%.2fx), %.2fx at nq=1 (medians of %d interleaved runs)\n",
           rf,
           o.nq,
           b0 * 1e3,
           b1 * 1e3,
           lut_scan_preferred(fs.tq, o.nq) ? "tables" : "int8 tiles",
           b2 * 1e3,
           s0 * 1e3,
           s1 * 1e3,
           b0 / b1,
           b0 / b2,
           s0 / s1,
           o.runs);
    bench_bandwidth(o, fs, fs.codes.blocks, "fast-scan", xq);
}

/// the int8 scan with AVX2's kernels against AVX-512 VNNI's where the CPU
/// has both, same codes and queries, 1 thread, default re-scoring, runs
/// interleaved: batched (o.nq queries) and one query at a time
void bench_kernel_sets(
        const Options& o,
        const IndexTurboQuant& idx,
        const std::vector<float>& xq) {
    const Int8Kernels* sets[2] = {int8_kernels_avx2(), int8_kernels_avx512()};
    if (!sets[0] || !sets[1]) {
        printf("kernel sets: no AVX-512 VNNI here, nothing to compare\n");
        return;
    }
    omp_set_num_threads(1);
    const size_t n1 = std::min(o.single_nq, o.nq), k = 10;
    TQQueries qb;
    idx.prepare_queries(o.nq, xq.data(), qb);
    std::vector<TQQueries> q1(n1);
    for (size_t q = 0; q < n1; q++) {
        idx.prepare_queries(1, xq.data() + q * o.d, q1[q]);
    }
    Result r;
    r.D.resize(o.nq * k);
    r.I.resize(o.nq * k);
    auto scan = [&](const TQQueries& q, size_t i0, const Int8Kernels& K) {
        scan_knn_int8(
                idx.tq,
                idx.codes.data(),
                idx.ntotal,
                q,
                k,
                kTQDefaultRerankFactor,
                r.D.data() + i0 * k,
                r.I.data() + i0 * k,
                nullptr,
                K);
    };
    std::vector<double> tb[2], t1[2];
    for (int run = 0; run < o.runs; run++) {
        for (int m = 0; m < 2; m++) {
            tb[m].push_back(
                    median_time(1, [&] { scan(qb, 0, *sets[m]); }).wall / o.nq);
            t1[m].push_back(
                    median_time(
                            1,
                            [&] {
                                for (size_t q = 0; q < n1; q++) {
                                    scan(q1[q], q, *sets[m]);
                                }
                            })
                            .wall /
                    n1);
        }
    }
    std::vector<double> rb, r1; // per-run ratios
    for (int run = 0; run < o.runs; run++) {
        rb.push_back(tb[0][run] / tb[1][run]);
        r1.push_back(t1[0][run] / t1[1][run]);
    }
    printf("kernel sets, 1 thread, ms/query: batch of %zd: %s %.3f, %s %.3f "
           "(%.2fx); nq=1: %.3f, %.3f (%.2fx) (medians of %d interleaved "
           "runs, ratios per run)\n",
           o.nq,
           sets[0]->name,
           median(tb[0]) * 1e3,
           sets[1]->name,
           median(tb[1]) * 1e3,
           median(rb),
           median(t1[0]) * 1e3,
           median(t1[1]) * 1e3,
           median(r1),
           o.runs);
    const LutKernels* luts[2] = {lut_kernels_avx2(), lut_kernels_avx512()};
    if (!luts[0] || !luts[1] || !lut_scan_unsupported(idx.tq).empty()) {
        return;
    }
    // the fast-scan layout's table scan, one query at a time
    IndexTurboQuantFastScan fs(idx);
    std::vector<double> tl[2], rl;
    for (int run = 0; run < o.runs; run++) {
        for (int m = 0; m < 2; m++) {
            tl[m].push_back(
                    median_time(
                            1,
                            [&] {
                                for (size_t q = 0; q < n1; q++) {
                                    scan_knn_lut(
                                            fs.tq,
                                            fs.codes,
                                            q1[q],
                                            k,
                                            kTQDefaultRerankFactor,
                                            r.D.data() + q * k,
                                            r.I.data() + q * k,
                                            nullptr,
                                            *luts[m]);
                                }
                            })
                            .wall /
                    n1);
        }
        rl.push_back(tl[0][run] / tl[1][run]);
    }
    printf("kernel sets, fast-scan tables, 1 thread, nq=1 ms/query: %s %.3f, "
           "%s %.3f (%.2fx) (medians of %d interleaved runs, ratios per "
           "run)\n",
           luts[0]->name,
           median(tl[0]) * 1e3,
           luts[1]->name,
           median(tl[1]) * 1e3,
           median(rl),
           o.runs);
}

/// the pre-scan with and without its first pass's seeds (bounds from a
/// sample of the codes), interleaved runs of the whole batch on 1 thread,
/// the queries prepared once outside the timings
void bench_prescan_seeds(
        const Options& o,
        const IndexTurboQuant& idx,
        const std::vector<float>& xq) {
    omp_set_num_threads(1);
    TQQueries q;
    idx.prepare_queries(o.nq, xq.data(), q);
    for (float pf : o.prescan) {
        Result r[2];
        std::vector<double> t[2], ratio;
        for (int run = 0; run < o.runs; run++) {
            for (int m = 0; m < 2; m++) {
                r[m].D.resize(o.nq * 10);
                r[m].I.resize(o.nq * 10);
                t[m].push_back(
                        median_time(
                                1,
                                [&] {
                                    scan_knn_prescan(
                                            idx.tq,
                                            idx.codes.data(),
                                            nullptr,
                                            idx.ntotal,
                                            q,
                                            10,
                                            kTQDefaultRerankFactor,
                                            (size_t)pf,
                                            r[m].D.data(),
                                            r[m].I.data(),
                                            nullptr,
                                            int8_kernels_best(),
                                            sign_kernels_best(),
                                            m == 1);
                                })
                                .wall /
                        o.nq);
            }
            ratio.push_back(t[0].back() / t[1].back());
        }
        printf("prescan %d seeds, 1 thread, ms/query: without %.3f, with "
               "%.3f (%.2fx), same results: %s (medians of %d interleaved "
               "runs, ratios per run)\n",
               (int)pf,
               median(t[0]) * 1e3,
               median(t[1]) * 1e3,
               median(ratio),
               r[0].I == r[1].I && r[0].D == r[1].D ? "yes" : "NO",
               o.runs);
    }
}

/// the sign pre-scan against the plain int8 scan (default re-scoring) at
/// each of o.threads, interleaved runs: the whole batch, and batches of
/// kTQPrescanMinQueries (the smallest that take the pre-scan)
void bench_prescan(
        const Options& o,
        const IndexTurboQuant& idx,
        const std::vector<float>& xq) {
    const float rf = kTQDefaultRerankFactor;
    const size_t nsmall = kTQPrescanMinQueries;
    const size_t nb16 = std::max<size_t>(1, std::min<size_t>(o.nq / nsmall, 4));
    Result full = search(idx, xq.data(), o.nq, TQ_SCAN_INT8, rf);
    for (int nt : o.threads)
        for (float pf : o.prescan) {
            omp_set_num_threads(nt);
            const int pre = (int)pf;
            double kept =
                    recall(search(idx, xq.data(), o.nq, TQ_SCAN_INT8, rf, pre),
                           full,
                           o.nq);
            std::vector<double> tb[2], ts[2], rb, rs;
            for (int r = 0; r < o.runs; r++) {
                for (int m = 0; m < 2; m++) {
                    const int pm = m ? pre : 0;
                    tb[m].push_back(
                            median_time(
                                    1,
                                    [&] {
                                        search(idx,
                                               xq.data(),
                                               o.nq,
                                               TQ_SCAN_INT8,
                                               rf,
                                               pm);
                                    })
                                    .wall /
                            o.nq);
                    ts[m].push_back(
                            median_time(
                                    1,
                                    [&] {
                                        for (size_t b = 0; b < nb16; b++) {
                                            search(idx,
                                                   xq.data() + b * nsmall * o.d,
                                                   std::min(nsmall, o.nq),
                                                   TQ_SCAN_INT8,
                                                   rf,
                                                   pm);
                                        }
                                    })
                                    .wall /
                            (nb16 * std::min(nsmall, o.nq)));
                }
                rb.push_back(tb[0].back() / tb[1].back());
                rs.push_back(ts[0].back() / ts[1].back());
            }
            printf("prescan %d (sign kernels %s), %d threads, ms/query: batch "
                   "of "
                   "%zd: int8 %.3f, prescan %.3f (%.2fx); batches of %zd: int8 "
                   "%.3f, prescan %.3f (%.2fx); the int8 scan's top 10 kept: "
                   "%.4f (medians of %d interleaved runs, ratios per run)\n",
                   pre,
                   sign_kernels_best().name,
                   nt,
                   o.nq,
                   median(tb[0]) * 1e3,
                   median(tb[1]) * 1e3,
                   median(rb),
                   nsmall,
                   median(ts[0]) * 1e3,
                   median(ts[1]) * 1e3,
                   median(rs),
                   kept,
                   o.runs);
        }
}

void bench_search(
        const Options& o,
        float bits,
        const std::vector<float>& xb,
        const std::vector<float>& xq) {
    IndexTurboQuant idx(o.d, bits);
    double te = now_s();
    idx.add(o.nb, xb.data());
    printf("\n== d=%zd nb=%zd %g bits, %s (add %.1f s)\n",
           o.d,
           o.nb,
           bits,
           idx.tq.layout_string().c_str(),
           now_s() - te);
    const size_t ne = std::min(o.exact_nq, o.nq);
    const size_t n1 = std::min(o.single_nq, o.nq);

    // recall of the int8 path against the exact estimator's top 10
    Result ref = search(idx, xq.data(), ne, TQ_SCAN_EXACT, 0);
    for (float rf : {0.0f, 1.0f, 1.5f, 2.0f, 4.0f}) {
        Result r = search(idx, xq.data(), ne, TQ_SCAN_INT8, rf);
        printf("recall@10 int8 vs exact (%zd queries), rerank %g: %.4f\n",
               ne,
               rf,
               recall(r, ref, ne));
    }

    for (int nt : o.threads) {
        omp_set_num_threads(nt);
        const size_t ne1 = std::min<size_t>(n1, 3);
        Timing t_ex = median_time(std::max(1, o.runs / 2), [&] {
            search(idx, xq.data(), ne, TQ_SCAN_EXACT, 0);
        });
        Timing t_ex1 = median_time(1, [&] {
            for (size_t q = 0; q < ne1; q++) {
                search(idx, xq.data() + q * o.d, 1, TQ_SCAN_EXACT, 0);
            }
        });
        printf("threads %d: exact float      batch of %4zd: %8.3f ms/query "
               "(cpu %8.3f), nq=1: %8.3f ms/query (cpu %8.3f)\n",
               nt,
               ne,
               t_ex.wall / ne * 1e3,
               t_ex.cpu / ne * 1e3,
               t_ex1.wall / ne1 * 1e3,
               t_ex1.cpu / ne1 * 1e3);
        for (float rf : {0.0f, kTQDefaultRerankFactor}) {
            Timing tb = median_time(o.runs, [&] {
                search(idx, xq.data(), o.nq, TQ_SCAN_INT8, rf);
            });
            Timing t1 = median_time(o.runs, [&] {
                for (size_t q = 0; q < n1; q++) {
                    search(idx, xq.data() + q * o.d, 1, TQ_SCAN_INT8, rf);
                }
            });
            printf("threads %d: int8 rerank %g batch of %4zd: %8.3f ms/query "
                   "(cpu %8.3f), nq=1: %8.3f ms/query (cpu %8.3f)\n",
                   nt,
                   rf,
                   o.nq,
                   tb.wall / o.nq * 1e3,
                   tb.cpu / o.nq * 1e3,
                   t1.wall / n1 * 1e3,
                   t1.cpu / n1 * 1e3);
        }
    }
    omp_set_num_threads(1);
    bench_tile_dots(idx);
    bench_prescan(o, idx, xq);
    bench_prescan_seeds(o, idx, xq);
    bench_kernel_sets(o, idx, xq);
    bench_bandwidth(o, idx, idx.codes, "int8", xq);
    if (lut_scan_unsupported(idx.tq).empty()) {
        bench_fastscan(o, idx, xq, ref);
    }
}

void bench_encode(const Options& o, size_t d) {
    const size_t n = d <= 256 ? 20000 : 5000;
    auto x = random_unit(n, d, 7);
    for (float bits : o.bits) {
        IndexTurboQuant idx(d, bits);
        std::vector<uint8_t> codes(n * idx.code_size);
        for (int nt : o.threads) {
            omp_set_num_threads(nt);
            Timing t = median_time(
                    o.runs, [&] { idx.sa_encode(n, x.data(), codes.data()); });
            printf("encode d=%zd %g bits, %d threads: %.0f vectors/s "
                   "(cpu: %.0f per thread-second)\n",
                   d,
                   bits,
                   nt,
                   n / t.wall,
                   n / t.cpu / nt);
        }
    }
}

} // namespace

int main(int argc, char** argv) {
    Options o = parse(argc, argv);
    setvbuf(stdout, nullptr, _IOLBF, 0);
    printf("int8 kernels: %s, max threads %d\n",
           int8_kernels_best().name,
           omp_get_max_threads());
    for (size_t d : o.encode_d) {
        if (d == 0) {
            continue;
        }
        bench_encode(o, d);
    }
    if (o.nb == 0) {
        return 0;
    }
    auto xb = random_unit(o.nb, o.d, 1);
    auto xq = random_unit(o.nq, o.d, 2);
    for (float bits : o.bits) {
        if (o.prescan_only) {
            IndexTurboQuant idx(o.d, bits);
            idx.add(o.nb, xb.data());
            printf("\n== d=%zd nb=%zd %g bits\n", o.d, o.nb, bits);
            bench_prescan(o, idx, xq);
            bench_prescan_seeds(o, idx, xq);
        } else if (o.bw_only) {
            IndexTurboQuant idx(o.d, bits);
            idx.add(o.nb, xb.data());
            printf("\n== d=%zd nb=%zd %g bits\n", o.d, o.nb, bits);
            bench_bandwidth(o, idx, idx.codes, "int8", xq);
            if (lut_scan_unsupported(idx.tq).empty()) {
                IndexTurboQuantFastScan fs(idx);
                bench_bandwidth(o, fs, fs.codes.blocks, "fast-scan", xq);
            }
        } else {
            bench_search(o, bits, xb, xq);
        }
    }
    return 0;
}
