/**
 * The approximate passes alone against their guarantee (scan_terms.cuh):
 * with a threshold T per query, every code whose exact key (the CPU's
 * exact distance, negated for inner products) is at most T is a candidate,
 * listed once, and the pass prunes. The CUDA-core pass (scan_approx.cu, 1
 * and 8 queries), the generic tensor-core pass (scan_approx.cu) and the
 * 4-bit pass (scan_tc4.cu) on 1 to 64 queries; a last partial tile of
 * codes, partial chunks of coordinates.
 * The searches' tests check results; this checks the candidate lists
 * themselves, where a bound that is too tight for a few codes would
 * rarely change a result. Skips without a device (the CPU emulation runs
 * it).
 */
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <random>
#include <set>
#include <string>
#include <vector>

#include <faiss_turbo/IndexTurboQuant.h>
#include <faiss_turbo/SearchParametersTurboQuant.h>
#include <gpu/StandardGpuResources.h>
#include <gpu/impl/CudaUtils.h>
#include <gpu/impl/DeviceCodec.h>
#include <gpu/impl/kernels.h>
#include <gpu/tests/gpu_test_util.h>

using namespace faiss_turbo;
using namespace faiss_turbo::gpu;
using tqtest::to_device_array;
using tqtest::to_host_array;

namespace {

struct Case {
    const char* name;
    float bits;
    TQVariant variant;
    bool debiased, centered;
    faiss::MetricType metric;
    size_t d;
};

/// x: gaussian vectors with a mean (for the centered codecs)
std::vector<float> data(size_t n, size_t d, uint64_t seed) {
    std::mt19937_64 rng(seed);
    std::normal_distribution<float> g;
    std::vector<float> x(n * d);
    for (size_t i = 0; i < n * d; i++) {
        x[i] = g(rng) + (i % d < 4 ? 2.0f : 0.0f);
    }
    return x;
}

/// exact keys of every code for every query (nq x nb), the CPU's
std::vector<float>
exact_keys(const IndexTurboQuant& cpu, const std::vector<float>& q, size_t nq) {
    const size_t nb = cpu.ntotal;
    std::vector<float> D(nq * nb), keys(nq * nb);
    std::vector<idx_t> I(nq * nb);
    SearchParametersTurboQuant exact;
    exact.scan_mode = TQ_SCAN_EXACT;
    cpu.search(nq, q.data(), nb, D.data(), I.data(), &exact);
    const bool l2 = cpu.metric_type == faiss::METRIC_L2;
    for (size_t i = 0; i < nq * nb; i++) {
        if (I[i] < 0 || I[i] >= (idx_t)nb) {
            ADD_FAILURE() << "the exact scan returned label " << I[i];
            continue;
        }
        keys[i / nb * nb + I[i]] = l2 ? D[i] : -D[i];
    }
    return keys;
}

/// the passes to run on codec c for nq queries: name, tensor cores, tc4
struct Pass {
    const char* name;
    bool tc, tc4;
};

std::vector<Pass> passes_for(const CodecView& c, int nq) {
    std::vector<Pass> p;
    if (nq <= approx_simt_max_queries(c)) {
        p.push_back({"cuda-cores", false, false});
    }
    if (nq <= generic_tc_max_queries(c)) {
        p.push_back({"tensor-cores", true, false});
    }
    if (nq <= tc4_max_queries(c)) {
        p.push_back({"tc4", true, true});
    }
    return p;
}

/** Runs each pass on nq queries with T = the rank-th best exact key and
 * checks its lists; returns the passes run. */
std::vector<Pass> check_passes(
        StandardGpuResources& res,
        const IndexTurboQuant& cpu,
        const std::vector<float>& q,
        int nq,
        size_t rank,
        const char* name) {
    const size_t nb = cpu.ntotal, d = cpu.d;
    const std::vector<float> keys = exact_keys(cpu, q, nq);
    std::vector<float> T(nq);
    for (int i = 0; i < nq; i++) {
        std::vector<float> row(
                keys.begin() + i * nb, keys.begin() + (i + 1) * nb);
        std::nth_element(row.begin(), row.begin() + rank, row.end());
        T[i] = row[rank];
    }
    TQQueries tq;
    cpu.prepare_queries(nq, q.data(), tq);
    DeviceCodec dc(&res, 0, cpu.tq);
    const CodecView& c = dc.view();
    const ApproxQueryRows ar = approx_query_rows(c, tq, 0, nq, d);
    // the codes with the searches' slack (the decoders read whole words)
    std::vector<uint8_t> hcodes(cpu.codes.begin(), cpu.codes.end());
    hcodes.resize(hcodes.size() + kCodeSlack, 0);
    auto codes = to_device_array(hcodes);
    auto a = to_device_array(ar.a);
    auto yn = to_device_array(ar.ynorm);
    auto an = to_device_array(ar.anorm);
    auto qc = to_device_array(tq.qconst);
    auto thr = to_device_array(T);
    auto ids = to_device_array(std::vector<int>((size_t)nq * nb));
    auto counts = to_device_array(std::vector<int>(nq));
    int sms = 0;
    TQ_CUDA_CHECK(
            cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, 0));
    ScanArgs sa;
    sa.c = c;
    sa.codes = codes.get();
    sa.ntotal = nb;
    sa.q.nq = nq;
    sa.q.a = a.get();
    sa.q.qconst = qc.get();
    sa.q.ynorm = yn.get();
    sa.q.anorm = an.get();
    sa.q.thresh = thr.get();
    sa.q.t_stride = 1;
    sa.q.l2 = cpu.metric_type == faiss::METRIC_L2;
    sa.out.ids = ids.get();
    sa.out.counts = counts.get();
    sa.out.capacity = (int)nb;
    sa.num_sms = sms;
    const std::vector<Pass> passes = passes_for(c, nq);
    for (const Pass& p : passes) {
        approx_error_model(c, p.tc, &sa.q.rel, &sa.q.abs);
        TQ_CUDA_CHECK(cudaMemset(counts.get(), 0, nq * sizeof(int)));
        // ids -1: a slot the pass counts but does not write reads as bad,
        // not as the previous pass's entry
        TQ_CUDA_CHECK(
                cudaMemset(ids.get(), 0xff, (size_t)nq * nb * sizeof(int)));
        launch_scan_approx(p.tc, sa, p.tc4);
        TQ_CUDA_CHECK(cudaDeviceSynchronize());
        std::vector<int> cnt = to_host_array(counts, nq);
        const std::vector<int> got = to_host_array(ids, (size_t)nq * nb);
        size_t total = 0, longest = 0, missed = 0, bad = 0;
        for (int i = 0; i < nq; i++) {
            EXPECT_LE((size_t)cnt[i], nb) << name << " " << p.name;
            cnt[i] = std::min(cnt[i], (int)nb);
            std::vector<char> listed(nb, 0);
            for (int j = 0; j < cnt[i]; j++) {
                const int id = got[(size_t)i * nb + j];
                bad += id < 0 || (size_t)id >= nb || listed[id]++;
            }
            for (size_t v = 0; v < nb; v++) {
                missed += keys[i * nb + v] <= T[i] && !listed[v];
            }
            total += cnt[i];
            longest = std::max(longest, (size_t)cnt[i]);
        }
        printf("[ %s nq=%d %s ] candidates per query: %zu on average, at "
               "most %zu; T at rank %zu\n",
               name,
               nq,
               p.name,
               total / nq,
               longest,
               rank);
        EXPECT_EQ(missed, 0u) << name << " nq=" << nq << " " << p.name
                              << ": codes within T left out";
        EXPECT_EQ(bad, 0u) << name << " nq=" << nq << " " << p.name
                           << ": ids out of range or listed twice";
        // rank + 1 codes have keys <= T; the error bounds let in a few more
        EXPECT_LT(longest, 4 * (rank + 1))
                << name << " nq=" << nq << " " << p.name
                << ": the bound lets in too many";
    }
    return passes;
}

} // namespace

TEST(GpuScanPass, KeepsEveryCodeWithinTheThreshold) {
    SKIP_WITHOUT_GPU();
    StandardGpuResources res;
    const Case cases[] = {
            // the 4-bit pass: one chunk of 128 coordinates, and 96 (a partial
            // chunk); the generic passes too
            {"mse4 debiased L2",
             4,
             TQVariant::MSE,
             true,
             false,
             faiss::METRIC_L2,
             128},
            {"mse4 plain IP centered",
             4,
             TQVariant::MSE,
             false,
             true,
             faiss::METRIC_INNER_PRODUCT,
             96},
            // the generic passes only: PROD's sign part, fractional bits
            {"prod3 L2",
             3,
             TQVariant::PROD,
             false,
             false,
             faiss::METRIC_L2,
             100},
            {"mse2.5 IP",
             2.5,
             TQVariant::MSE,
             true,
             false,
             faiss::METRIC_INNER_PRODUCT,
             64},
    };
    const size_t nb = 3001; // a last tile of 25 codes (tc4: 32 per tile)
    std::set<std::string> ran;
    for (const Case& k : cases) {
        IndexTurboQuant cpu(
                k.d,
                k.bits,
                k.variant,
                k.metric,
                k.centered,
                k.debiased,
                RotationType::AUTO,
                QJLType::GAUSSIAN,
                77);
        const std::vector<float> xb = data(nb, k.d, 5);
        cpu.train(nb, xb.data());
        cpu.add(nb, xb.data());
        const std::vector<float> q = data(64, k.d, 6);
        for (int nq : {1, 8, 20, 64}) {
            for (const Pass& p : check_passes(res, cpu, q, nq, 40, k.name)) {
                ran.insert(std::string(p.name) + " nq=" + std::to_string(nq));
            }
        }
    }
    for (const char* p :
         {"cuda-cores nq=1",
          "cuda-cores nq=8",
          "tensor-cores nq=64",
          "tc4 nq=1",
          "tc4 nq=20",
          "tc4 nq=64"}) {
        EXPECT_TRUE(ran.count(p)) << p << " never ran";
    }
}
