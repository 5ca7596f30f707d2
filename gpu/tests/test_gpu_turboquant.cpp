/**
 * GPU TurboQuant against the CPU index. Every test skips (GTEST_SKIP) when
 * no CUDA device is visible, so CI without a GPU passes them as skipped.
 *
 * Properties checked: codes equal the CPU's bit for bit (Hadamard and dense
 * rotations, Hadamard and Gaussian QJL; where they would not, the report
 * says whether the CPU's rotated coordinate is within rounding of a
 * decision boundary); search results equal the CPU's exact scan (labels
 * wherever the CPU's distance gap exceeds 1e-5 relative, distances within 1e-4
 * relative, and in fact bit for bit); memory errors are FAISS exceptions that
 * leave the index usable.
 */
#include <gtest/gtest.h>

#include <algorithm>
#include <climits>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <vector>

#include <faiss/IndexFlat.h>
#include <faiss/IndexIVF.h>
#include <faiss/impl/FaissAssert.h>
#include <faiss/impl/IDSelector.h>

#include <faiss_turbo/IndexIVFTurboQuant.h>
#include <faiss_turbo/IndexIVFTurboQuantFastScan.h>
#include <faiss_turbo/IndexTurboQuant.h>
#include <faiss_turbo/IndexTurboQuantFastScan.h>
#include <faiss_turbo/SearchParametersTurboQuant.h>
#include <faiss_turbo/impl/blocked_invlists.h>
#include <faiss_turbo/impl/coord_rules.h>

#include <gpu/GpuCloner.h>
#include <gpu/GpuIndexIVFTurboQuant.h>
#include <gpu/GpuIndexTurboQuant.h>
#include <gpu/StandardGpuResources.h>
#include <gpu/impl/CudaUtils.h>
#include <gpu/tests/gpu_test_util.h>

using namespace faiss_turbo;
using namespace faiss_turbo::gpu;
using tqtest::to_device_array;
using tqtest::to_host_array;

namespace {

/// database sizes divided by TQ_GPU_TEST_SCALE (default 1), for running
/// the suite on the CPU emulation of the kernels
size_t scaled(size_t n) {
    const char* s = getenv("TQ_GPU_TEST_SCALE");
    size_t f = s ? std::max(1, atoi(s)) : 1;
    return std::max<size_t>(n / f, std::min<size_t>(n, 50));
}

std::vector<float> gaussian(size_t n, size_t d, uint64_t seed) {
    std::mt19937_64 rng(seed);
    std::normal_distribution<float> g;
    std::vector<float> x(n * d);
    for (size_t i = 0; i < n * d; i++) {
        x[i] = g(rng) + (i % d < 4 ? 3.0f : 0.0f); // a mean for centering
    }
    return x;
}

/// data with near neighbours: queries are noisy copies of base vectors
std::vector<float>
noisy_copies(const std::vector<float>& xb, size_t d, size_t nq, uint64_t seed) {
    std::mt19937_64 rng(seed);
    std::normal_distribution<float> g(0, 0.3f);
    size_t nb = xb.size() / d;
    std::vector<float> q(nq * d);
    for (size_t i = 0; i < nq; i++) {
        size_t src = (i * 7919) % nb;
        for (size_t j = 0; j < d; j++) {
            q[i * d + j] = xb[src * d + j] + g(rng);
        }
    }
    return q;
}

struct Codec {
    const char* name;
    float bits;
    TQVariant variant;
    bool debiased;
    bool centered;
    RotationType rot;
    QJLType qjl;
};

std::unique_ptr<IndexTurboQuant>
make_cpu(size_t d, const Codec& c, faiss::MetricType m = faiss::METRIC_L2) {
    return std::unique_ptr<IndexTurboQuant>(new IndexTurboQuant(
        d, c.bits, c.variant, m, c.centered, c.debiased, c.rot, c.qjl, 1234));
}

const RotationType kHad = RotationType::HADAMARD;
const RotationType kDense = RotationType::DENSE;
const QJLType kQHad = QJLType::HADAMARD;
const QJLType kQGauss = QJLType::GAUSSIAN;
const TQVariant kMSE = TQVariant::MSE;
/// the codec most tests take: 4-bit debiased MSE
const Codec kMse4 = {
    "mse4", 4, kMSE, true, false, RotationType::AUTO, kQGauss};
const TQVariant kPROD = TQVariant::PROD;

/// an IndexFlatCodes' codes (a MaybeOwnedVector in FAISS 1.11+) as a vector
template <class Codes> std::vector<uint8_t> as_vector(const Codes& c) {
    return std::vector<uint8_t>(c.begin(), c.end());
}

std::vector<uint8_t> gpu_codes(const GpuIndexTurboQuant& g) {
    std::vector<uint8_t> c(g.ntotal * g.code_size());
    g.get_codes(0, g.ntotal, c.data());
    return c;
}

/// CPU and GPU encode the same vectors: number of differing codes
size_t encode_both(
    StandardGpuResources& res,
    size_t d,
    const Codec& c,
    size_t n,
    std::unique_ptr<IndexTurboQuant>& cpu,
    std::vector<uint8_t>& gcodes,
    std::vector<float>& x,
    faiss::MetricType metric = faiss::METRIC_L2) {
    x = gaussian(n, d, 42 + d);
    cpu = make_cpu(d, c, metric);
    cpu->train(n, x.data());
    GpuIndexTurboQuant g(&res, *cpu);
    cpu->add(n, x.data());
    g.add(n, x.data());
    gcodes = gpu_codes(g);
    size_t bad = 0, cs = cpu->code_size;
    for (size_t i = 0; i < n; i++) {
        bad +=
            memcmp(gcodes.data() + i * cs, cpu->codes.data() + i * cs, cs) != 0;
    }
    return bad;
}

TEST(GpuTurboQuant, EncodeBitExactWithHadamardRotation) {
    SKIP_WITHOUT_GPU();
    StandardGpuResources res;
    const Codec codecs[] = {
        {"mse1", 1, kMSE, false, false, kHad, kQHad},
        {"mse2", 2, kMSE, false, false, kHad, kQHad},
        {"mse3", 3, kMSE, false, false, kHad, kQHad},
        {"mse4 debiased", 4, kMSE, true, false, kHad, kQHad},
        {"mse2.5 debiased", 2.5, kMSE, true, false, kHad, kQHad},
        {"mse3.5 centered", 3.5, kMSE, true, true, kHad, kQHad},
        {"mse8", 8, kMSE, false, false, kHad, kQHad},
        {"prod3", 3, kPROD, false, false, kHad, kQHad},
        {"prod2.5", 2.5, kPROD, false, false, kHad, kQHad},
        {"prod4 centered", 4, kPROD, false, true, kHad, kQHad},
    };
    for (size_t d : {128, 100, 300}) {
        for (const Codec& c : codecs) {
            std::unique_ptr<IndexTurboQuant> cpu;
            std::vector<uint8_t> gcodes;
            std::vector<float> x;
            size_t bad = encode_both(res, d, c, scaled(2000), cpu, gcodes, x);
            EXPECT_EQ(bad, 0u) << c.name << " d=" << d;
        }
    }
}

/// the CPU's u = R (x - mean) / norm, rotated with the CPU's rotation
std::vector<float> cpu_rotated_unit(
    const IndexTurboQuant& cpu, const std::vector<float>& x, size_t n) {
    const TurboQuantizer& tq = cpu.tq;
    size_t d = tq.d;
    std::vector<float> xc(x), u(n * d);
    for (size_t i = 0; i < n * d; i++) {
        xc[i] -= tq.mean.empty() ? 0.0f : tq.mean[i % d];
    }
    tq.rotation->apply(n, xc.data(), u.data());
    for (size_t i = 0; i < n; i++) {
        float nrm = (float)std::sqrt(
            canonical_dot(xc.data() + i * d, xc.data() + i * d, d));
        float inv = nrm > 0 ? 1.0f / nrm : 0.0f;
        for (size_t j = 0; j < d; j++) {
            u[i * d + j] = scale_coord(u[i * d + j], nrm, inv);
        }
    }
    return u;
}

TEST(GpuTurboQuant, EncodeBitExactWithDenseProducts) {
    SKIP_WITHOUT_GPU();
    StandardGpuResources res;
    const Codec codecs[] = {
        {"dense mse4 debiased", 4, kMSE, true, false, kDense, kQHad},
        {"dense mse2.5", 2.5, kMSE, false, true, kDense, kQHad},
        {"dense prod3 gaussian", 3, kPROD, false, false, kDense, kQGauss},
        {"hadamard prod3 gaussian", 3, kPROD, false, false, kHad, kQGauss},
    };
    const size_t n = scaled(5000);
    for (size_t d : {96, 100})
        for (const Codec& c : codecs) {
            std::unique_ptr<IndexTurboQuant> cpu;
            std::vector<uint8_t> gc;
            std::vector<float> x;
            size_t bad_codes = encode_both(res, d, c, n, cpu, gc, x);
            const TurboQuantizer& tq = cpu->tq;
            std::vector<float> u = cpu_rotated_unit(*cpu, x, n);
            size_t idx_diff = 0, unexplained = 0, sign_diff = 0, norm_diff = 0;
            for (size_t i = 0; i < n; i++) {
                const uint8_t* a = cpu->codes.data() + i * tq.code_size;
                const uint8_t* b = gc.data() + i * tq.code_size;
                size_t pos = 0, vec_idx_diff = 0;
                for (size_t j = 0; j < d; j++) {
                    const Codebook& cb = j < tq.n_hi ? *tq.cb_hi : *tq.cb_lo;
                    uint32_t ia = get_bits(a, pos, cb.nbits);
                    uint32_t ib = get_bits(b, pos, cb.nbits);
                    pos += cb.nbits;
                    if (ia == ib) {
                        continue;
                    }
                    idx_diff++;
                    vec_idx_diff++;
                    // adjacent cells, and u within rounding of their boundary
                    uint32_t lo = std::min(ia, ib);
                    float thr = cb.thresholds[lo];
                    if (std::max(ia, ib) != lo + 1 ||
                        std::fabs(u[i * d + j] - thr) > 2e-5f) {
                        unexplained++;
                    }
                }
                // a different index changes the residual, hence many signs:
                // only vectors with equal indices show the rounding of S r
                for (size_t j = 0;
                     vec_idx_diff == 0 && j < tq.qjl_bytes * 8 && j < d;
                     j++) {
                    sign_diff += get_bits(a + tq.mse_bytes, j, 1) !=
                                 get_bits(b + tq.mse_bytes, j, 1);
                }
                norm_diff += memcmp(
                                 a + tq.mse_bytes + tq.qjl_bytes,
                                 b + tq.mse_bytes + tq.qjl_bytes,
                                 4) != 0;
            }
            printf(
                "[ %s ] codes differing: %zd of %zd; indices differing: %zd "
                "of %zd (unexplained %zd); signs differing: %zd\n",
                c.name,
                bad_codes,
                n,
                idx_diff,
                n * d,
                unexplained,
                sign_diff);
            // matmul_rows is deterministic (dot_lanes per output) and the GPU
            // follows it: no difference at all, boundaries or not
            EXPECT_EQ(bad_codes, 0u) << c.name;
            EXPECT_EQ(idx_diff, 0u)
                << c.name << " (" << unexplained << " not near a boundary)";
            EXPECT_EQ(norm_diff, 0u) << c.name;
            EXPECT_EQ(sign_diff, 0u) << c.name;
        }
}

/// CPU search with k + 1 results: the gap after the k-th is then known
struct Reference {
    size_t nq, k;
    std::vector<float> D;
    std::vector<idx_t> I;
};

Reference
cpu_search(const faiss::Index& cpu, const std::vector<float>& q, size_t k) {
    Reference r;
    r.nq = q.size() / cpu.d;
    r.k = k;
    r.D.resize(r.nq * (k + 1));
    r.I.resize(r.nq * (k + 1));
    SearchParametersTurboQuant exact; // the reference: every code scored
    exact.scan_mode = TQ_SCAN_EXACT;
    cpu.search(r.nq, q.data(), k + 1, r.D.data(), r.I.data(), &exact);
    return r;
}

struct Agreement {
    size_t total = 0, exact = 0, label_checked = 0, label_bad = 0, dist_bad = 0;
};

Agreement compare(
    const Reference& r,
    const std::vector<float>& D,
    const std::vector<idx_t>& I) {
    Agreement a;
    const size_t k = r.k, k1 = k + 1;
    for (size_t qi = 0; qi < r.nq; qi++) {
        const float* rd = r.D.data() + qi * k1;
        const idx_t* ri = r.I.data() + qi * k1;
        for (size_t j = 0; j < k; j++) {
            float g = D[qi * k + j];
            idx_t l = I[qi * k + j];
            a.total++;
            // bit-exact distances; labels too, except inside a run of equal
            // distances, which FAISS's IVF heaps may order either way
            bool tie = (j > 0 && rd[j - 1] == rd[j]) || rd[j + 1] == rd[j];
            a.exact += (g == rd[j] || (std::isinf(g) && std::isinf(rd[j]))) &&
                       (l == ri[j] || tie);
            if (std::isinf(rd[j])) {
                a.label_checked++;
                a.label_bad += l != -1;
                continue;
            }
            float scale = std::max(std::fabs(rd[j]), 1e-6f);
            a.dist_bad += !(std::fabs(g - rd[j]) <= 1e-4f * scale);
            bool sep_prev =
                j == 0 || std::fabs(rd[j] - rd[j - 1]) > 1e-5f * scale;
            bool sep_next = std::isinf(rd[j + 1]) ||
                            std::fabs(rd[j + 1] - rd[j]) > 1e-5f * scale;
            if (sep_prev && sep_next) {
                a.label_checked++;
                a.label_bad += l != ri[j];
            }
        }
    }
    return a;
}

void expect_agreement(
    const Agreement& a, const std::string& what, bool bit_exact) {
    EXPECT_EQ(a.dist_bad, 0u) << what;
    EXPECT_EQ(a.label_bad, 0u)
        << what << " (" << a.label_checked << " labels checked)";
    if (bit_exact) {
        EXPECT_EQ(a.exact, a.total) << what << ": results not bit-exact";
    }
}

struct Mode {
    const char* name;
    GpuScanMode scan;
    int64_t direct_max;
};

const Mode kModes[] = {
    {"direct", GpuScanMode::AUTO, 1 << 30},
    {"cuda-cores", GpuScanMode::CUDA_CORES, 0},
    {"tensor-cores", GpuScanMode::TENSOR_CORES, 0},
    {"auto", GpuScanMode::AUTO, 0},
};

void search_case(
    StandardGpuResources& res,
    const Codec& c,
    faiss::MetricType metric,
    size_t d,
    size_t nb,
    const std::vector<size_t>& nqs,
    const std::vector<size_t>& ks) {
    nb = scaled(nb);
    std::vector<float> xb = gaussian(nb, d, 7);
    auto cpu = make_cpu(d, c, metric);
    cpu->train(nb, xb.data());
    cpu->add(nb, xb.data());
    GpuIndexTurboQuant g(&res, *cpu);
    for (size_t nq : nqs) {
        std::vector<float> q = noisy_copies(xb, d, nq, 99 + nq);
        for (size_t k : ks) {
            Reference r = cpu_search(*cpu, q, k);
            for (const Mode& m : kModes) {
                g.set_scan_mode(m.scan);
                g.set_direct_max_ntotal(m.direct_max);
                std::vector<float> D(nq * k);
                std::vector<idx_t> I(nq * k);
                g.search(nq, q.data(), k, D.data(), I.data());
                char what[256];
                snprintf(
                    what,
                    sizeof(what),
                    "%s %s d=%zd nb=%zd nq=%zd "
                    "k=%zd mode=%s",
                    c.name,
                    metric == faiss::METRIC_L2 ? "L2" : "IP",
                    d,
                    nb,
                    nq,
                    k,
                    m.name);
                Agreement a = compare(r, D, I);
                const GpuSearchStats& st = g.last_search_stats();
                printf(
                    "[ %s ] exact %zd/%zd, candidates %ld, retries %d\n",
                    what,
                    a.exact,
                    a.total,
                    (long)st.candidates,
                    st.retries);
                expect_agreement(a, what, true);
            }
        }
    }
}

TEST(GpuTurboQuant, SearchMatchesCpuMSE) {
    SKIP_WITHOUT_GPU();
    StandardGpuResources res;
    search_case(
        res,
        {"mse4 debiased", 4, kMSE, true, false, RotationType::AUTO, kQGauss},
        faiss::METRIC_L2,
        128,
        20000,
        {1, 7, 100},
        {1, 10, 100});
    // 4-bit codes with d % 32 == 0 take the streaming tensor-core pass
    // (scan_tc4.cu): a partial last chunk of coordinates (96), two chunks
    // (256), 1, 2 and 4 query tiles, a last warp tile of 11 codes
    search_case(
        res,
        {"mse4 plain", 4, kMSE, false, false, kHad, kQGauss},
        faiss::METRIC_L2,
        96,
        20011,
        {20, 40},
        {10});
    search_case(
        res,
        {"mse4 debiased", 4, kMSE, true, false, kHad, kQGauss},
        faiss::METRIC_INNER_PRODUCT,
        256,
        20011,
        {64},
        {10});
    search_case(
        res,
        {"mse3 plain", 3, kMSE, false, false, kHad, kQGauss},
        faiss::METRIC_L2,
        100,
        20000,
        {13},
        {10});
    search_case(
        res,
        {"mse2.5 centered", 2.5, kMSE, true, true, kDense, kQGauss},
        faiss::METRIC_L2,
        64,
        20000,
        {20},
        {10});
}

// the largest d the GPU takes (kMaxGpuDim, 4096: the encoder's shared
// memory), every scan mode, MSE and PROD (whose rescoring stages two query
// vectors); one more is refused with an error naming d
TEST(GpuTurboQuant, SearchHighDimensionLikeCpu) {
    SKIP_WITHOUT_GPU();
    StandardGpuResources res;
    const Codec codecs[] = {
        {"mse4", 4, kMSE, true, false, kHad, kQGauss},
        {"prod3", 3, kPROD, false, false, kHad, kQHad},
    };
    const size_t d = 4096, nb = 5000, nq = 2, k = 10; // nb > 2 x sample
    std::vector<float> xb = gaussian(nb, d, 8);
    std::vector<float> q = noisy_copies(xb, d, nq, 9);
    for (const Codec& c : codecs) {
        auto cpu = make_cpu(d, c);
        cpu->add(nb, xb.data());
        GpuIndexTurboQuant g(&res, *cpu);
        Reference r = cpu_search(*cpu, q, k);
        for (const Mode& m : kModes) {
            g.set_scan_mode(m.scan);
            g.set_direct_max_ntotal(m.direct_max);
            std::vector<float> D(nq * k);
            std::vector<idx_t> I(nq * k);
            try {
                g.search(nq, q.data(), k, D.data(), I.data());
            } catch (const faiss::FaissException& e) {
                // the tensor-core pass may refuse this d, with a reason
                EXPECT_EQ(m.scan, GpuScanMode::TENSOR_CORES) << e.what();
                EXPECT_NE(strstr(e.what(), "too large"), nullptr) << e.what();
                continue;
            }
            const GpuSearchStats& st = g.last_search_stats();
            printf(
                "[ %s d=4096 %s ] candidates %ld, chunks %d\n",
                c.name,
                m.name,
                (long)st.candidates,
                st.chunks);
            expect_agreement(
                compare(r, D, I),
                std::string(c.name) + " d=4096 mode=" + m.name,
                true);
        }
        // and the same codes back from the device
        std::unique_ptr<IndexTurboQuant> back(new IndexTurboQuant());
        g.copyTo(back.get());
        EXPECT_EQ(back->codes, cpu->codes) << c.name;
    }
    auto over = make_cpu(d + 1, codecs[0]);
    try {
        GpuIndexTurboQuant g(&res, *over);
        ADD_FAILURE() << "d=4097 taken";
    } catch (const faiss::FaissException& e) {
        EXPECT_NE(strstr(e.what(), "d=4097"), nullptr) << e.what();
    }
}

// centered inner-product codecs store <mean, x - mean> (ip_offset) as a
// last float: the GPU writes it bit for bit (Hadamard rotation), with and
// without an aux float before it, and adds it to the scores as the CPU does
TEST(GpuTurboQuant, CenteredInnerProductLikeCpu) {
    SKIP_WITHOUT_GPU();
    StandardGpuResources res;
    const Codec codecs[] = {
        {"mse4 debiased centered", 4, kMSE, true, true, kHad, kQHad},
        {"mse3 plain centered", 3, kMSE, false, true, kHad, kQHad},
        {"prod3 centered", 3, kPROD, false, true, kHad, kQHad},
    };
    for (const Codec& c : codecs) {
        std::unique_ptr<IndexTurboQuant> cpu;
        std::vector<uint8_t> gcodes;
        std::vector<float> x;
        size_t bad = encode_both(
            res, 100, c, scaled(2000), cpu, gcodes, x,
            faiss::METRIC_INNER_PRODUCT);
        ASSERT_TRUE(cpu->tq.ip_offset) << c.name;
        EXPECT_EQ(bad, 0u) << c.name;
    }
    for (const Codec& c : codecs) {
        search_case(
            res, c, faiss::METRIC_INNER_PRODUCT, 64, 20000, {1, 9}, {10});
    }
    // made on the GPU (the mean learned there too), searched like the CPU
    const size_t d = 48, n = scaled(5000);
    std::vector<float> x = gaussian(n, d, 5);
    GpuIndexTurboQuant g(&res, d, 4, kMSE, faiss::METRIC_INNER_PRODUCT, true);
    g.train(n, x.data());
    g.add(n, x.data());
    IndexTurboQuant cpu;
    g.copyTo(&cpu);
    ASSERT_TRUE(cpu.tq.ip_offset);
    std::vector<float> q = noisy_copies(x, d, 5, 3);
    Reference r = cpu_search(cpu, q, 10);
    std::vector<float> D(5 * 10);
    std::vector<idx_t> I(5 * 10);
    g.search(5, q.data(), 10, D.data(), I.data());
    expect_agreement(compare(r, D, I), "made on the GPU", true);
}

TEST(GpuTurboQuant, SearchMatchesCpuPROD) {
    SKIP_WITHOUT_GPU();
    StandardGpuResources res;
    search_case(
        res,
        {"prod4", 4, kPROD, false, false, RotationType::AUTO, kQGauss},
        faiss::METRIC_L2,
        128,
        20000,
        {5, 40},
        {10});
    search_case(
        res,
        {"prod3 hadamard", 3, kPROD, false, false, kHad, kQHad},
        faiss::METRIC_INNER_PRODUCT,
        200,
        15000,
        {33},
        {20});
}

/// the CPU's exact search with a selector, k + 1 results (Reference)
Reference cpu_search_sel(
    const faiss::Index& cpu,
    const std::vector<float>& q,
    size_t k,
    faiss::IDSelector* sel, // FAISS 1.7.3's SearchParameters::sel
    size_t nprobe = 0) {
    Reference r;
    r.nq = q.size() / cpu.d;
    r.k = k;
    r.D.resize(r.nq * (k + 1));
    r.I.resize(r.nq * (k + 1));
    SearchParametersTurboQuant exact;
    exact.scan_mode = TQ_SCAN_EXACT;
    SearchParametersIVFTurboQuant ivf;
    ivf.scan_mode = TQ_SCAN_EXACT;
    ivf.nprobe = nprobe;
    faiss::SearchParameters* p = nprobe ? (faiss::SearchParameters*)&ivf
                                        : (faiss::SearchParameters*)&exact;
    p->sel = sel;
    cpu.search(r.nq, q.data(), k + 1, r.D.data(), r.I.data(), p);
    return r;
}

/// every other id (the sample's stride may line up with it)
struct OddIds : faiss::IDSelector {
    bool is_member(idx_t id) const override {
        return id % 2 != 0;
    }
};

/// selectors of a test: 90% of the ids (more than the candidate capacity:
/// the sample is drawn from the kept codes), half, every other one, a few
/// scattered ones (fewer than k: -1 padding), none
struct Selectors {
    faiss::IDSelectorRange most, half;
    OddIds odd;
    std::vector<idx_t> few_ids;
    std::unique_ptr<faiss::IDSelectorBatch> few;
    faiss::IDSelectorRange none;

    Selectors(idx_t lo, idx_t hi)
        : most(lo + (hi - lo) / 10, hi),
          half(lo, lo + (hi - lo) / 2),
          none(hi, hi + 10) {
        for (idx_t i = lo + 3; i < hi && few_ids.size() < 6; i += 97) {
            few_ids.push_back(i);
        }
        few.reset(new faiss::IDSelectorBatch(few_ids.size(), few_ids.data()));
    }

    std::vector<std::pair<const char*, faiss::IDSelector*>> all() {
        return {{"most", &most},
                {"half", &half},
                {"odd", &odd},
                {"few", few.get()},
                {"none", &none}};
    }
};

TEST(GpuTurboQuant, SelectorLikeCpu) {
    // the CPU's exact search with the same selector, bit for bit, on every
    // path: direct, both approximate passes (the sample's bound over the
    // kept codes), the 4-bit tensor-core pass
    SKIP_WITHOUT_GPU();
    StandardGpuResources res;
    struct Case {
        Codec c;
        faiss::MetricType m;
        size_t d;
    };
    const Case cases[] = {
        {kMse4, faiss::METRIC_L2, 64},
        {{"mse3 ip", 3, kMSE, true, false, kHad, kQGauss},
         faiss::METRIC_INNER_PRODUCT,
         48},
    };
    const size_t nb = scaled(20000), nq = 5, k = 10;
    for (const Case& cs : cases) {
        std::vector<float> xb = gaussian(nb, cs.d, 31);
        auto cpu = make_cpu(cs.d, cs.c, cs.m);
        cpu->train(nb, xb.data());
        cpu->add(nb, xb.data());
        GpuIndexTurboQuant g(&res, *cpu);
        std::vector<float> q = noisy_copies(xb, cs.d, nq, 33);
        Selectors sels(0, nb);
        for (auto [sname, sel] : sels.all()) {
            Reference r = cpu_search_sel(*cpu, q, k, sel);
            for (const Mode& m : kModes) {
                g.set_scan_mode(m.scan);
                g.set_direct_max_ntotal(m.direct_max);
                faiss::SearchParameters p;
                p.sel = sel;
                std::vector<float> D(nq * k);
                std::vector<idx_t> I(nq * k);
                g.search(nq, q.data(), k, D.data(), I.data(), &p);
                char what[200];
                snprintf(
                    what,
                    sizeof(what),
                    "%s selector %s mode %s",
                    cs.c.name,
                    sname,
                    m.name);
                Agreement a = compare(r, D, I);
                const GpuSearchStats& st = g.last_search_stats();
                printf(
                    "[ %s ] exact %zd/%zd, candidates %ld\n",
                    what,
                    a.exact,
                    a.total,
                    (long)st.candidates);
                expect_agreement(a, what, true);
                for (size_t i = 0; i < nq * k; i++) {
                    ASSERT_TRUE(I[i] == -1 || sel->is_member(I[i])) << what;
                }
            }
        }
    }
}

TEST(GpuTurboQuant, SearchLargeK) {
    SKIP_WITHOUT_GPU();
    StandardGpuResources res;
    search_case(
        res,
        {"mse4 debiased", 4, kMSE, true, false, RotationType::AUTO, kQGauss},
        faiss::METRIC_L2,
        64,
        60000,
        {3, 20},
        {2048});
}

TEST(GpuTurboQuant, SearchFewerVectorsThanK) {
    SKIP_WITHOUT_GPU();
    StandardGpuResources res;
    for (auto metric : {faiss::METRIC_L2, faiss::METRIC_INNER_PRODUCT}) {
        search_case(
            res,
            kMse4,
            metric,
            32,
            50,
            {3},
            {100});
    }
}

TEST(GpuTurboQuant, ReconstructEqualsCpu) {
    SKIP_WITHOUT_GPU();
    StandardGpuResources res;
    const size_t d = 48, n = 500;
    std::vector<float> x = gaussian(n, d, 3);
    auto cpu = make_cpu(d, {"prod3", 3, kPROD, false, false, kHad, kQHad});
    cpu->add(n, x.data());
    GpuIndexTurboQuant g(&res, *cpu);
    std::vector<float> a(10 * d), b(10 * d);
    cpu->reconstruct_n(100, 10, a.data());
    g.reconstruct_n(100, 10, b.data());
    EXPECT_EQ(a, b);
    EXPECT_THROW(g.reconstruct(n, b.data()), faiss::FaissException);
}

TEST(GpuTurboQuant, RemoveIdsLikeCpu) {
    SKIP_WITHOUT_GPU();
    StandardGpuResources res;
    const size_t d = 64, n = 3000;
    std::vector<float> x = gaussian(n, d, 5);
    auto cpu = make_cpu(d, {"mse4", 4, kMSE, true, false, kHad, kQHad});
    cpu->add(n, x.data());
    GpuIndexTurboQuant g(&res, *cpu);
    faiss::IDSelectorRange sel(100, 1100);
    EXPECT_EQ(cpu->remove_ids(sel), 1000u);
    EXPECT_EQ(g.remove_ids(sel), 1000u);
    ASSERT_EQ(g.ntotal, cpu->ntotal);
    EXPECT_EQ(
        gpu_codes(g),
        std::vector<uint8_t>(cpu->codes.begin(), cpu->codes.end()));
    std::vector<float> q = noisy_copies(x, d, 10, 1);
    Reference r = cpu_search(*cpu, q, 10);
    std::vector<float> D(100);
    std::vector<idx_t> I(100);
    g.search(10, q.data(), 10, D.data(), I.data());
    expect_agreement(compare(r, D, I), "after remove_ids", true);
    faiss::IDSelectorRange none(n, n + 5);
    EXPECT_EQ(g.remove_ids(none), 0u);
}

TEST(GpuTurboQuant, MemoryAccountingAndReset) {
    SKIP_WITHOUT_GPU();
    StandardGpuResources res;
    const size_t d = 128, n = 10000;
    std::vector<float> x = gaussian(n, d, 9);
    GpuIndexTurboQuant g(&res, d, 4);
    size_t before = g.getDeviceMemoryUsage();
    g.add(n, x.data());
    size_t after = g.getDeviceMemoryUsage();
    EXPECT_GE(after - before, n * g.code_size());
    EXPECT_LE(g.getDeviceMemoryUsage(), res.getMemoryUsage(g.getDevice()));
    g.reset();
    EXPECT_EQ(g.ntotal, 0);
    EXPECT_LT(g.getDeviceMemoryUsage(), after - n * g.code_size() + 1);
    std::vector<float> D(10);
    std::vector<idx_t> I(10);
    g.search(1, x.data(), 10, D.data(), I.data());
    EXPECT_EQ(I[0], -1);
}

TEST(GpuTurboQuant, OutOfMemoryIsAnException) {
    SKIP_WITHOUT_GPU();
    const size_t d = 128;
    std::vector<float> x = gaussian(2000, d, 11);
    {
        // a cap on the resources: the add fails, the index stays usable
        StandardGpuResources res;
        GpuIndexTurboQuant g(&res, d, 4);
        g.add(1000, x.data());
        res.setMemoryLimit(res.getMemoryUsage(0) + 1000);
        EXPECT_THROW(g.add(1000, x.data() + 1000 * d), faiss::FaissException);
        EXPECT_EQ(g.ntotal, 1000);
        res.setMemoryLimit(0);
        std::vector<float> D(5);
        std::vector<idx_t> I(5);
        g.search(1, x.data(), 5, D.data(), I.data());
        EXPECT_EQ(I[0], 0);
    }
    {
        // the card itself runs out: 2^31 - 2 codes of 520 bytes, 1.1 TB
        StandardGpuResources res;
        const size_t d2 = 1024;
        std::vector<float> x2 = gaussian(200, d2, 12);
        GpuIndexTurboQuant g(&res, d2, 4);
        g.add(100, x2.data());
        try {
            g.reserve(INT_MAX - 1);
            FAIL() << "reserve of 1.1 TB did not throw";
        } catch (const faiss::FaissException& e) {
            EXPECT_NE(
                std::string(e.what()).find("out of memory"), std::string::npos)
                << e.what();
        }
        EXPECT_EQ(g.ntotal, 100);
        g.add(100, x2.data() + 100 * d2); // still usable
        EXPECT_EQ(g.ntotal, 200);
    }
}

TEST(GpuTurboQuant, BadInputThrows) {
    SKIP_WITHOUT_GPU();
    StandardGpuResources res;
    const size_t d = 32;
    std::vector<float> x = gaussian(100, d, 13);
    GpuIndexTurboQuant g(&res, d, 4);
    g.add(100, x.data());
    std::vector<float> D(3000);
    std::vector<idx_t> I(3000);
    EXPECT_THROW(
        g.search(1, x.data(), 0, D.data(), I.data()), faiss::FaissException);
    EXPECT_THROW(
        g.search(1, x.data(), 2049, D.data(), I.data()), faiss::FaissException);
    // a query too long for L2 distances in float: refused, as on the CPU;
    // and for inner products (scores overflowing to NaN)
    std::vector<float> big(d, 1e20f);
    EXPECT_THROW(
        g.search(1, big.data(), 5, D.data(), I.data()), faiss::FaissException);
    GpuIndexTurboQuant gip(
        &res, d, 4, TQVariant::MSE, faiss::METRIC_INNER_PRODUCT);
    gip.add(100, x.data());
    EXPECT_THROW(
        gip.search(1, big.data(), 5, D.data(), I.data()),
        faiss::FaissException);
    std::vector<float> bad(x.begin(), x.begin() + 2 * d);
    bad[d + 3] = NAN;
    try {
        g.add(2, bad.data());
        ADD_FAILURE() << "NaN added";
    } catch (const faiss::FaissException& e) { // named as the CPU names it
        EXPECT_NE(strstr(e.what(), "vector 1 "), nullptr) << e.what();
    }
    EXPECT_EQ(g.ntotal, 100);
    EXPECT_THROW(
        g.search(2, bad.data(), 5, D.data(), I.data()), faiss::FaissException);
    GpuIndexTurboQuantConfig cfg;
    cfg.device = getNumDevices();
    EXPECT_THROW(
        GpuIndexTurboQuant(
            &res,
            d,
            4,
            kMSE,
            faiss::METRIC_L2,
            false,
            true,
            RotationType::AUTO,
            kQGauss,
            1234,
            cfg),
        faiss::FaissException);
    EXPECT_THROW(GpuIndexTurboQuant(&res, 8192, 4), faiss::FaissException);
}

// vectors near float's limit (two entries of 2.4e38, which the Hadamard
// transform always adds somewhere, or of 2e37, which no sum inside it can
// take past float's limit, though the scan for an overflow runs): the GPU
// refuses exactly those the CPU refuses (an overflow
// in the norm, the rotation or beta) and stores the CPU's codes for the
// others
TEST(GpuTurboQuant, OverflowRefusedLikeCpu) {
    SKIP_WITHOUT_GPU();
    StandardGpuResources res;
    const size_t d = 64;
    size_t refused = 0, stored = 0;
    for (bool debiased : {false, true}) {
        auto cpu = make_cpu(
            d, {"mse4", 4, kMSE, debiased, false, kHad, kQGauss});
        GpuIndexTurboQuant g(&res, *cpu);
        for (size_t j1 = 0; j1 < 8; j1++) {
            for (size_t j2 = j1 + 1; j2 < d; j2 += 7) {
                std::vector<float> x(d, 0.0f);
                x[j1] = x[j2] = j2 % 2 ? 2.4e38f : 2e37f;
                std::vector<uint8_t> want(cpu->code_size);
                bool cpu_refused = false;
                try {
                    cpu->sa_encode(1, x.data(), want.data());
                } catch (const faiss::FaissException&) {
                    cpu_refused = true;
                }
                const idx_t before = g.ntotal;
                bool gpu_refused = false;
                try {
                    g.add(1, x.data());
                } catch (const faiss::FaissException& e) {
                    gpu_refused = true;
                    EXPECT_NE(
                        strstr(e.what(), "vector 0 is too long for float"),
                        nullptr)
                        << e.what();
                }
                EXPECT_EQ(cpu_refused, gpu_refused) << j1 << " " << j2;
                if (gpu_refused) {
                    EXPECT_EQ(g.ntotal, before);
                    refused++;
                    continue;
                }
                std::vector<uint8_t> got = gpu_codes(g);
                EXPECT_EQ(
                    std::vector<uint8_t>(
                        got.end() - g.code_size(), got.end()),
                    want);
                stored++;
            }
        }
    }
    EXPECT_GT(refused, 0u);
    EXPECT_GT(stored, 0u);
}

// subnormal norms (about 2^-131: 1 / norm overflows float), where the
// codec divides (scale_coord): the GPU stores the CPU's codes for such
// vectors, and finds the CPU's results for such queries, whose unit
// direction the approximate passes take by the same rule (with a reciprocal
// they saw NaN and kept every code as a candidate)
TEST(GpuTurboQuant, SubnormalNormsLikeCpu) {
    SKIP_WITHOUT_GPU();
    StandardGpuResources res;
    const size_t d = 64, nb = scaled(20000), nq = 8, k = 10;
    const float tiny = std::ldexp(1.0f, -134);
    std::vector<float> xb = gaussian(nb, d, 5), xs(xb);
    std::vector<float> q = noisy_copies(xb, d, nq, 3);
    for (float& v : xs) {
        v *= tiny;
    }
    for (float& v : q) {
        v *= tiny;
    }
    const Codec codecs[] = {
        {"mse4", 4, kMSE, false, false, kHad, kQHad},
        {"mse2 debiased", 2, kMSE, true, false, kHad, kQHad},
        {"prod3", 3, kPROD, false, false, kHad, kQHad},
    };
    for (const Codec& c : codecs) {
        auto cpu = make_cpu(d, c, faiss::METRIC_INNER_PRODUCT);
        GpuIndexTurboQuant g(&res, *cpu);
        cpu->add(nb, xs.data());
        g.add(nb, xs.data());
        EXPECT_EQ(gpu_codes(g), as_vector(cpu->codes)) << c.name;
        if (c.variant == kMSE && c.debiased) {
            continue; // the search: one 4-bit MSE and one PROD codec
        }
        cpu->reset();
        g.reset();
        cpu->add(nb, xb.data());
        g.add(nb, xb.data());
        Reference r = cpu_search(*cpu, q, k);
        for (const Mode& m : kModes) {
            if (m.direct_max > 0) {
                continue; // the exact scan alone: no approximate pass
            }
            g.set_scan_mode(m.scan);
            g.set_direct_max_ntotal(m.direct_max);
            std::vector<float> D(nq * k);
            std::vector<idx_t> I(nq * k);
            g.search(nq, q.data(), k, D.data(), I.data());
            std::string what = std::string(c.name) + " " + m.name;
            expect_agreement(compare(r, D, I), what, true);
            EXPECT_LT(g.last_search_stats().candidates, (int64_t)(nq * nb / 4))
                    << what;
        }
    }
}

TEST(GpuTurboQuant, ClonerRoundTripAndDeviceInput) {
    SKIP_WITHOUT_GPU();
    StandardGpuResources res;
    const size_t d = 128, n = 4000;
    std::vector<float> x = gaussian(n, d, 17);
    auto cpu = make_cpu(d, {"mse4 centered", 4, kMSE, true, true, kHad, kQHad});
    cpu->train(n, x.data());
    cpu->add(n, x.data());
    std::unique_ptr<faiss::Index> g(index_cpu_to_gpu(&res, 0, cpu.get()));
    std::unique_ptr<faiss::Index> back(index_gpu_to_cpu(g.get()));
    auto* b = dynamic_cast<IndexTurboQuant*>(back.get());
    ASSERT_TRUE(b);
    EXPECT_EQ(b->codes, cpu->codes);
    EXPECT_EQ(b->tq.mean, cpu->tq.mean);
    // the fast-scan layout goes over as the same row codes
    IndexTurboQuantFastScan fs(*cpu);
    std::unique_ptr<faiss::Index> gfs(index_cpu_to_gpu(&res, 0, &fs));
    std::unique_ptr<faiss::Index> bfs(index_gpu_to_cpu(gfs.get()));
    auto* bf = dynamic_cast<IndexTurboQuant*>(bfs.get());
    ASSERT_TRUE(bf);
    EXPECT_EQ(bf->codes, cpu->codes);
    faiss::IndexFlatL2 flat(d);
    EXPECT_THROW(index_cpu_to_gpu(&res, 0, &flat), faiss::FaissException);

    // train on the GPU index: same mean; add from device memory: same codes
    GpuIndexTurboQuant g2(
        &res, d, 4, kMSE, faiss::METRIC_L2, true, true, kHad, kQHad);
    EXPECT_FALSE(g2.is_trained);
    g2.train(n, x.data());
    EXPECT_EQ(g2.codec().mean, cpu->tq.mean);
    g2.add_from_device(n, to_device_array(x).get());
    EXPECT_EQ(
        gpu_codes(g2),
        std::vector<uint8_t>(cpu->codes.begin(), cpu->codes.end()));
}

/// a trained CPU IVF index (flat coarse quantizer, owned)
std::unique_ptr<IndexIVFTurboQuant> make_ivf(
    size_t d,
    size_t nlist,
    const Codec& c,
    faiss::MetricType m,
    bool by_residual,
    const std::vector<float>& xt) {
    faiss::Index* quant = m == faiss::METRIC_L2
                              ? (faiss::Index*)new faiss::IndexFlatL2(d)
                              : (faiss::Index*)new faiss::IndexFlatIP(d);
    std::unique_ptr<IndexIVFTurboQuant> ivf(new IndexIVFTurboQuant(
        quant,
        d,
        nlist,
        c.bits,
        c.variant,
        m,
        by_residual,
        c.centered,
        c.debiased,
        c.rot,
        c.qjl,
        1234));
    ivf->own_fields = true;
    ivf->train(xt.size() / d, xt.data());
    return ivf;
}

Reference ivf_search(
    const IndexIVFTurboQuant& cpu,
    const std::vector<float>& q,
    size_t k,
    size_t nprobe) {
    Reference r;
    r.nq = q.size() / cpu.d;
    r.k = k;
    r.D.resize(r.nq * (k + 1));
    r.I.resize(r.nq * (k + 1));
    faiss::SearchParametersIVF p;
    p.nprobe = nprobe;
    cpu.search(r.nq, q.data(), k + 1, r.D.data(), r.I.data(), &p);
    return r;
}

/// lists of two CPU IVF indexes hold the same ids and codes, in order
void expect_same_lists(
    const IndexIVFTurboQuant& a,
    const IndexIVFTurboQuant& b,
    const char* what) {
    ASSERT_EQ(a.nlist, b.nlist);
    size_t bad = 0;
    for (size_t l = 0; l < a.nlist; l++) {
        size_t n = a.invlists->list_size(l);
        if (n != b.invlists->list_size(l)) {
            bad++;
            continue;
        }
        if (n == 0) {
            continue;
        }
        faiss::InvertedLists::ScopedCodes ca(a.invlists, l), cb(b.invlists, l);
        faiss::InvertedLists::ScopedIds ia(a.invlists, l), ib(b.invlists, l);
        bad += memcmp(ca.get(), cb.get(), n * a.code_size) != 0;
        bad += memcmp(ia.get(), ib.get(), n * sizeof(idx_t)) != 0;
    }
    EXPECT_EQ(bad, 0u) << what << ": lists differ";
}

TEST(GpuTurboQuant, IVFAddAndSearchMatchCpu) {
    SKIP_WITHOUT_GPU();
    StandardGpuResources res;
    struct Case {
        Codec c;
        faiss::MetricType m;
        bool residual;
    };
    const Case cases[] = {
        {{"ivf mse4 debiased",
          4,
          kMSE,
          true,
          false,
          RotationType::AUTO,
          kQGauss},
         faiss::METRIC_L2,
         true},
        {{"ivf prod3", 3, kPROD, false, false, kHad, kQHad},
         faiss::METRIC_L2,
         true},
        {{"ivf mse3 ip", 3, kMSE, true, false, kDense, kQGauss},
         faiss::METRIC_INNER_PRODUCT,
         true},
        {{"ivf prod3 ip", 3, kPROD, false, false, kHad, kQHad},
         faiss::METRIC_INNER_PRODUCT,
         true},
        {{"ivf mse4 centered, no residual",
          4,
          kMSE,
          true,
          true,
          RotationType::AUTO,
          kQGauss},
         faiss::METRIC_L2,
         false},
    };
    const size_t d = 64, nlist = 32, nb = scaled(20000);
    std::vector<float> xb = gaussian(nb, d, 21);
    for (const Case& cs : cases) {
        auto cpu = make_ivf(d, nlist, cs.c, cs.m, cs.residual, xb);
        cpu->add(nb / 2, xb.data());
        GpuIndexIVFTurboQuant g(&res, *cpu);
        // the second half added on both sides: same lists, same codes
        cpu->add(nb - nb / 2, xb.data() + nb / 2 * d);
        g.add(nb - nb / 2, xb.data() + nb / 2 * d);
        ASSERT_EQ(g.ntotal, cpu->ntotal);
        std::unique_ptr<IndexIVFTurboQuant> back(g.toCpu());
        expect_same_lists(*cpu, *back, cs.c.name);

        std::vector<float> q = noisy_copies(xb, d, 37, 5);
        for (size_t nprobe : {1, 4, 32}) {
            for (size_t k : {10, 300}) {
                Reference r = ivf_search(*cpu, q, k, nprobe);
                faiss::SearchParametersIVF p;
                p.nprobe = nprobe;
                std::vector<float> D(37 * k);
                std::vector<idx_t> I(37 * k);
                g.search(37, q.data(), k, D.data(), I.data(), &p);
                char what[200];
                snprintf(
                    what,
                    sizeof(what),
                    "%s nprobe=%zd k=%zd",
                    cs.c.name,
                    nprobe,
                    k);
                Agreement a = compare(r, D, I);
                printf("[ %s ] exact %zd/%zd\n", what, a.exact, a.total);
                expect_agreement(a, what, true);
            }
        }
    }
}

TEST(GpuTurboQuant, IVFSelectorLikeCpu) {
    // ids that are not positions (add_with_ids), probed and unprobed lists,
    // L2 and inner product (left-out slots: +inf / -inf)
    SKIP_WITHOUT_GPU();
    StandardGpuResources res;
    const size_t d = 32, nlist = 16, nb = scaled(12000), nq = 7, k = 10;
    std::vector<float> xb = gaussian(nb, d, 37);
    std::vector<idx_t> ids(nb);
    for (size_t i = 0; i < nb; i++) {
        ids[i] = 1000 + 3 * (idx_t)i;
    }
    std::vector<float> q = noisy_copies(xb, d, nq, 39);
    Selectors sels(1000, 1000 + 3 * (idx_t)nb);
    for (auto m : {faiss::METRIC_L2, faiss::METRIC_INNER_PRODUCT}) {
        auto cpu = make_ivf(
            d,
            nlist,
            kMse4,
            m,
            true,
            xb);
        cpu->add_with_ids(nb, xb.data(), ids.data());
        GpuIndexIVFTurboQuant g(&res, *cpu);
        for (auto [sname, sel] : sels.all()) {
            for (size_t nprobe : {2, 16}) {
                Reference r = cpu_search_sel(*cpu, q, k, sel, nprobe);
                faiss::SearchParametersIVF p;
                p.nprobe = nprobe;
                p.sel = sel;
                std::vector<float> D(nq * k);
                std::vector<idx_t> I(nq * k);
                g.search(nq, q.data(), k, D.data(), I.data(), &p);
                faiss::SearchParameters plain; // refused, as IndexIVF does
                plain.sel = sel;
                EXPECT_THROW(
                    g.search(nq, q.data(), k, D.data(), I.data(), &plain),
                    faiss::FaissException);
                char what[200];
                snprintf(
                    what,
                    sizeof(what),
                    "IVF %s selector %s nprobe %zd",
                    m == faiss::METRIC_L2 ? "L2" : "IP",
                    sname,
                    nprobe);
                Agreement a = compare(r, D, I);
                printf("[ %s ] exact %zd/%zd\n", what, a.exact, a.total);
                expect_agreement(a, what, true);
                for (size_t i = 0; i < nq * k; i++) {
                    ASSERT_TRUE(I[i] == -1 || sel->is_member(I[i])) << what;
                }
            }
        }
    }
}

TEST(GpuTurboQuant, IVFLargeKClonerAndErrors) {
    SKIP_WITHOUT_GPU();
    StandardGpuResources res;
    const size_t d = 32, nlist = 16, nb = scaled(12000);
    std::vector<float> xb = gaussian(nb, d, 23);
    auto cpu = make_ivf(
        d,
        nlist,
        kMse4,
        faiss::METRIC_L2,
        true,
        xb);
    cpu->add(nb, xb.data());
    cpu->nprobe = 8;
    std::unique_ptr<faiss::Index> g(index_cpu_to_gpu(&res, 0, cpu.get()));
    auto* gi = dynamic_cast<GpuIndexIVFTurboQuant*>(g.get());
    ASSERT_TRUE(gi);
    EXPECT_EQ(gi->nprobe, 8u);
    std::vector<float> q = noisy_copies(xb, d, 5, 9);
    const size_t k = 2048;
    Reference r = ivf_search(*cpu, q, k, 8);
    std::vector<float> D(5 * k);
    std::vector<idx_t> I(5 * k);
    g->search(5, q.data(), k, D.data(), I.data());
    expect_agreement(compare(r, D, I), "IVF k=2048", true);

    std::unique_ptr<faiss::Index> back(index_gpu_to_cpu(g.get()));
    auto* b = dynamic_cast<IndexIVFTurboQuant*>(back.get());
    ASSERT_TRUE(b);
    expect_same_lists(*cpu, *b, "cloner round trip");

    EXPECT_THROW(g->train(nb, xb.data()), faiss::FaissException);
    // too long for the coarse quantizer's L2 distances in float (its
    // arbitrary list was read past the lists' end)
    std::vector<float> huge(d, 1e20f);
    EXPECT_THROW(
        g->search(1, huge.data(), 10, D.data(), I.data()),
        faiss::FaissException);
    {
        std::unique_ptr<IndexIVFTurboQuant> ip(
            make_ivf(d, nlist, kMse4, faiss::METRIC_INNER_PRODUCT, true, xb));
        GpuIndexIVFTurboQuant gip(&res, *ip);
        EXPECT_THROW(
            gip.search(1, huge.data(), 10, D.data(), I.data()),
            faiss::FaissException);
    }
    EXPECT_THROW(g->add(1, huge.data()), faiss::FaissException);
    EXPECT_THROW(
        g->search(1, q.data(), 2049, D.data(), I.data()),
        faiss::FaissException);
    idx_t big = idx_t(1) << 40;
    EXPECT_THROW(g->add_with_ids(1, xb.data(), &big), faiss::FaissException);
    g->reset();
    EXPECT_EQ(g->ntotal, 0);
    g->search(1, q.data(), 10, D.data(), I.data());
    EXPECT_EQ(I[0], -1);
}

// one query probing 70000 lists, and three probing them all: 70000 (query,
// list) rows, more than a grid's y extent (65535), which failed to launch
// when each row had its own blockIdx.y (the emulation refuses such a grid
// as a device does); now only the non-empty lists are launched, in slices
// (of 7 on the emulation, so that every test there runs several)
// an add that runs out of device memory at any of its allocations (codes,
// labels, staging, the lists' permutation) leaves the index as it was: its
// size and its search results; with memory, the same add then succeeds
TEST(GpuTurboQuant, IVFAddOutOfMemoryLeavesIndexUnchanged) {
    SKIP_WITHOUT_GPU();
    StandardGpuResources res;
    const size_t d = 32, nlist = 8, k = 10;
    std::vector<float> xb = gaussian(1550, d, 31);
    auto cpu = make_ivf(
        d,
        nlist,
        kMse4,
        faiss::METRIC_L2,
        true,
        xb);
    std::unique_ptr<faiss::Index> g(index_cpu_to_gpu(&res, 0, cpu.get()));
    auto* gi = dynamic_cast<GpuIndexIVFTurboQuant*>(g.get());
    ASSERT_TRUE(gi);
    gi->nprobe = nlist;
    const std::vector<float> q = noisy_copies(xb, d, 5, 3);
    std::vector<float> D0(5 * k), D(5 * k);
    std::vector<idx_t> I0(5 * k), I(5 * k);
    // adds x[i0, i0 + n) under growing memory limits until it fits
    auto add_under_limits = [&](size_t i0, size_t n) {
        g->search(5, q.data(), k, D0.data(), I0.data());
        std::set<std::string> failed; // the allocations that failed
        for (size_t extra = 0;; extra += 512) {
            ASSERT_LT(extra, size_t(1) << 20) << "the add never fit";
            res.setMemoryLimit(res.getMemoryUsage(0) + extra);
            std::string what;
            try {
                g->add(n, xb.data() + i0 * d);
                break;
            } catch (const faiss::FaissException& e) {
                what = e.what();
                what = what.substr(0, what.find(" needs "));
            }
            res.setMemoryLimit(0);
            ASSERT_EQ(g->ntotal, (idx_t)i0) << "after a failed add, " << what;
            if (failed.insert(what).second) { // searches are slow emulated
                g->search(5, q.data(), k, D.data(), I.data());
                ASSERT_EQ(I, I0) << "after a failed add, " << what;
                ASSERT_EQ(D, D0) << "after a failed add, " << what;
            }
        }
        res.setMemoryLimit(0);
        EXPECT_GT(failed.size(), 0u);
        EXPECT_EQ(g->ntotal, (idx_t)(i0 + n));
        cpu->add(n, xb.data() + i0 * d);
    };
    g->add(1000, xb.data());
    cpu->add(1000, xb.data());
    add_under_limits(1000, 10);   // grows the codes to 1500
    add_under_limits(1010, 40);   // staging and permutation only
    add_under_limits(1050, 500);  // everything grows
    Reference r = ivf_search(*cpu, q, k, nlist);
    g->search(5, q.data(), k, D.data(), I.data());
    expect_agreement(compare(r, D, I), "IVF add after out of memory", true);
}

/// the CPU index's exact search with k results
void exact_search(
    const faiss::Index& cpu,
    const std::vector<float>& q,
    size_t k,
    std::vector<float>& D,
    std::vector<idx_t>& I) {
    const size_t nq = q.size() / cpu.d;
    D.assign(nq * k, 0);
    I.assign(nq * k, 0);
    SearchParametersIVFTurboQuant ivf; // the IVF indexes take these
    ivf.scan_mode = TQ_SCAN_EXACT;
    ivf.nprobe = 1 << 20;
    SearchParametersTurboQuant flat;
    flat.scan_mode = TQ_SCAN_EXACT;
    const bool is_ivf = dynamic_cast<const faiss::IndexIVF*>(&cpu);
    cpu.search(
        nq,
        q.data(),
        k,
        D.data(),
        I.data(),
        is_ivf ? (const faiss::SearchParameters*)&ivf : &flat);
}

/// bit patterns, so that -0 and +0 differ
std::vector<uint32_t> float_bits(const std::vector<float>& v) {
    std::vector<uint32_t> b(v.size());
    memcpy(b.data(), v.data(), v.size() * 4);
    return b;
}

// every vector stored 4 times (and a zero vector, whose inner products are
// 0): the ids kept from a run of equal distances cut by k, and their
// order, are the CPU's: by L2 the smaller ids, by inner product the larger
// (FAISS's heaps), listed ascending by the flat index, descending by the
// IVF's heaps; zero inner products are +0
TEST(GpuTurboQuant, TiesLikeCpu) {
    SKIP_WITHOUT_GPU();
    StandardGpuResources res;
    const size_t d = 32, nu = 300, n = 4 * nu + 1;
    const Codec c = kMse4;
    std::vector<float> u = gaussian(nu, d, 51), xb;
    for (int r = 0; r < 4; r++) {
        xb.insert(xb.end(), u.begin(), u.end());
    }
    xb.insert(xb.end(), d, 0.0f);
    std::vector<float> q(u.begin(), u.begin() + 6 * d); // exact copies
    q.insert(q.end(), d, 0.0f);                        // all scores 0 by IP
    for (faiss::MetricType m :
         {faiss::METRIC_L2, faiss::METRIC_INNER_PRODUCT}) {
        auto flat = make_cpu(d, c, m);
        flat->train(n, xb.data());
        flat->add(n, xb.data());
        auto ivf = make_ivf(d, 4, c, m, true, xb);
        ivf->add(n, xb.data());
        GpuIndexTurboQuant gf(&res, *flat);
        GpuIndexIVFTurboQuant gi(&res, *ivf);
        gi.nprobe = 4;
        for (size_t k : {1, 2, 3, 6, 10, 150}) { // 150: the block path
            std::vector<float> D0, D(7 * k);
            std::vector<idx_t> I0, I(7 * k);
            for (const Mode& mode : kModes) {
                gf.set_scan_mode(mode.scan);
                gf.set_direct_max_ntotal(mode.direct_max);
                exact_search(*flat, q, k, D0, I0);
                gf.search(7, q.data(), k, D.data(), I.data());
                EXPECT_EQ(I, I0)
                        << "flat " << m << " k " << k << " " << mode.name;
                EXPECT_EQ(float_bits(D), float_bits(D0))
                        << "flat " << m << " k " << k << " " << mode.name;
            }
            exact_search(*ivf, q, k, D0, I0);
            gi.search(7, q.data(), k, D.data(), I.data());
            EXPECT_EQ(I, I0) << "ivf " << m << " k " << k;
            EXPECT_EQ(float_bits(D), float_bits(D0))
                    << "ivf " << m << " k " << k;
        }
    }
}

// a vector the encoder refuses (finite, but its norm overflows a float:
// inner-product indexes take any finite vector) fails the whole add,
// also where the add runs in several batches (the CPU emulation's are 256
// vectors): the batches before it are taken back, as for the CPU index
// (whose one block of 65536 holds them all)
TEST(GpuTurboQuant, IVFAddOfARefusedVectorAddsNothing) {
    SKIP_WITHOUT_GPU();
    StandardGpuResources res;
    const size_t d = 32, nlist = 4, n = 700, k = 5;
    std::vector<float> xb = gaussian(n, d, 53);
    auto cpu = make_ivf(
        d,
        nlist,
        kMse4,
        faiss::METRIC_INNER_PRODUCT,
        true,
        xb);
    cpu->add(100, xb.data());
    GpuIndexIVFTurboQuant g(&res, *cpu);
    g.nprobe = nlist;
    const std::vector<float> q = noisy_copies(xb, d, 3, 5);
    std::vector<float> D0(3 * k), D(3 * k);
    std::vector<idx_t> I0(3 * k), I(3 * k);
    g.search(3, q.data(), k, D0.data(), I0.data());
    std::fill(xb.begin() + 600 * d, xb.begin() + 601 * d, 3e38f);
    EXPECT_THROW(cpu->add(n, xb.data()), faiss::FaissException);
    EXPECT_EQ(cpu->ntotal, 100);
    try {
        g.add(n, xb.data());
        ADD_FAILURE() << "the add took a vector whose norm overflows";
    } catch (const faiss::FaissException& e) {
        EXPECT_NE(std::string(e.what()).find("600"), std::string::npos)
                << e.what(); // names the caller's row
    }
    EXPECT_EQ(g.ntotal, 100);
    for (size_t l = 0; l < nlist; l++) {
        EXPECT_EQ(g.list_size(l), cpu->invlists->list_size(l)) << l;
    }
    g.search(3, q.data(), k, D.data(), I.data());
    EXPECT_EQ(I, I0);
    EXPECT_EQ(D, D0);
}

/// a coarse quantizer FAISS cannot clone (clone_index knows its own
/// classes only)
struct OpaqueQuantizer : faiss::Index {
    faiss::IndexFlatL2 inner;
    explicit OpaqueQuantizer(const faiss::IndexFlatL2& c)
        : faiss::Index(c.d, c.metric_type), inner(c) {
        ntotal = c.ntotal;
    }
    void add(idx_t n, const float* x) override {
        inner.add(n, x);
        ntotal = inner.ntotal;
    }
    void reset() override {
        inner.reset();
        ntotal = 0;
    }
    void search(
        idx_t n,
        const float* x,
        idx_t k,
        float* D,
        idx_t* I,
        const faiss::SearchParameters* p = nullptr) const override {
        inner.search(n, x, k, D, I, p);
    }
    void reconstruct(idx_t key, float* r) const override {
        inner.reconstruct(key, r);
    }
};

// copyFrom either replaces the whole index or, failing (a quantizer FAISS
// cannot clone, an id past 2^31, out of memory at any allocation), leaves
// it as it was: size, search results, reconstruction
TEST(GpuTurboQuant, IVFCopyFromFailureLeavesIndexUnchanged) {
    SKIP_WITHOUT_GPU();
    StandardGpuResources res;
    const size_t d = 32, nlist = 8, k = 10;
    const Codec codec = kMse4;
    std::vector<float> xb = gaussian(1600, d, 41);
    auto a = make_ivf(d, nlist, codec, faiss::METRIC_L2, true, xb);
    a->add(600, xb.data());
    GpuIndexIVFTurboQuant g(&res, *a);
    g.nprobe = nlist;
    const std::vector<float> q = noisy_copies(xb, d, 5, 4);
    std::vector<float> D0(5 * k), D(5 * k), r0(d), r(d);
    std::vector<idx_t> I0(5 * k), I(5 * k);
    g.search(5, q.data(), k, D0.data(), I0.data());
    g.reconstruct(17, r0.data());
    auto expect_unchanged = [&](const std::string& what) {
        ASSERT_EQ(g.ntotal, 600) << what;
        ASSERT_EQ(g.nlist, nlist) << what;
        g.search(5, q.data(), k, D.data(), I.data());
        ASSERT_EQ(I, I0) << what;
        ASSERT_EQ(D, D0) << what;
        g.reconstruct(17, r.data());
        ASSERT_EQ(r, r0) << what;
    };
    {
        auto* fq = dynamic_cast<faiss::IndexFlatL2*>(a->quantizer);
        ASSERT_TRUE(fq);
        IndexIVFTurboQuant b(
            new OpaqueQuantizer(*fq), d, nlist, 3.0f, kMSE);
        b.own_fields = true;
        b.add(100, xb.data());
        EXPECT_THROW(g.copyFrom(b), faiss::FaissException);
        expect_unchanged("unclonable quantizer");
    }
    {
        auto b = make_ivf(d, 4, codec, faiss::METRIC_L2, true, xb);
        std::vector<idx_t> ids(100, 1);
        ids[60] = idx_t(1) << 40;
        b->add_with_ids(100, xb.data(), ids.data());
        EXPECT_THROW(g.copyFrom(*b), faiss::FaissException);
        expect_unchanged("id past 2^31");
    }
    auto b = make_ivf(d, 16, codec, faiss::METRIC_L2, true, xb);
    b->add(1600, xb.data());
    std::set<std::string> failed;
    for (size_t extra = 0;; extra += 1024) {
        ASSERT_LT(extra, size_t(1) << 22) << "the copy never fit";
        res.setMemoryLimit(res.getMemoryUsage(0) + extra);
        std::string what;
        try {
            g.copyFrom(*b);
            break;
        } catch (const faiss::FaissException& e) {
            what = e.what();
            what = what.substr(0, what.find(" needs "));
        }
        res.setMemoryLimit(0);
        if (failed.insert(what).second) { // searches are slow emulated
            expect_unchanged(what);
        }
    }
    res.setMemoryLimit(0);
    EXPECT_GE(failed.size(), 3u); // tables, codes, ids, lists
    EXPECT_EQ(g.ntotal, 1600);
    b->nprobe = 16;
    Reference ref = ivf_search(*b, q, k, 16);
    g.nprobe = 16;
    g.search(5, q.data(), k, D.data(), I.data());
    expect_agreement(compare(ref, D, I), "IVF after copyFrom", true);
}

// reconstruct_n as IndexIVF's (the CPU index's): ids within ntotal, a
// repeated id gives its last copy in list order, absent ids leave their
// slots as they were
TEST(GpuTurboQuant, IVFReconstructNLikeCpu) {
    SKIP_WITHOUT_GPU();
    StandardGpuResources res;
    const size_t d = 32, nlist = 8, n = 200;
    std::vector<float> xb = gaussian(n, d, 43);
    auto cpu = make_ivf(
        d,
        nlist,
        {"prod3", 3, TQVariant::PROD, false, false, RotationType::AUTO,
         kQGauss},
        faiss::METRIC_L2,
        true,
        xb);
    std::vector<idx_t> ids(n);
    for (size_t i = 0; i < n; i++) {
        ids[i] = (i * 7) % 150; // 0..149, some twice; 150..199 absent
    }
    cpu->add_with_ids(n, xb.data(), ids.data());
    GpuIndexIVFTurboQuant g(&res, *cpu);
    for (auto [i0, ni] : {std::pair<idx_t, idx_t>{0, 200}, {140, 20}, {5, 1},
                          {199, 1}, {7, 0}}) {
        std::vector<float> a(ni * d, -3.0f), b(ni * d, -3.0f);
        cpu->reconstruct_n(i0, ni, a.data());
        g.reconstruct_n(i0, ni, b.data());
        EXPECT_EQ(a, b) << "i0 " << i0 << " ni " << ni;
    }
    std::vector<float> b(2 * d);
    EXPECT_THROW(g.reconstruct_n(199, 2, b.data()), faiss::FaissException);
    EXPECT_THROW(g.reconstruct_n(-1, 1, b.data()), faiss::FaissException);
}

// inner-product residual indexes of files written before ip_offset hold
// codes without <c, x - c>: they clone both ways with their own code size
TEST(GpuTurboQuant, IVFInnerProductOldLayoutRoundTrips) {
    SKIP_WITHOUT_GPU();
    StandardGpuResources res;
    const size_t d = 32, nlist = 8, n = 500, k = 10;
    std::vector<float> xb = gaussian(n, d, 47);
    auto cpu = make_ivf(
        d,
        nlist,
        kMse4,
        faiss::METRIC_INNER_PRODUCT,
        true,
        xb);
    // what faiss-turbo's reader makes of such a file
    cpu->tq.ip_offset = false;
    cpu->tq.set_layout();
    cpu->code_size = cpu->tq.code_size;
    cpu->replace_invlists(
        new faiss::ArrayInvertedLists(nlist, cpu->code_size), true);
    cpu->add(n, xb.data());
    cpu->nprobe = 4;
    std::unique_ptr<faiss::Index> g(index_cpu_to_gpu(&res, 0, cpu.get()));
    std::unique_ptr<faiss::Index> back(index_gpu_to_cpu(g.get()));
    auto* b = dynamic_cast<IndexIVFTurboQuant*>(back.get());
    ASSERT_TRUE(b);
    EXPECT_EQ(b->code_size, cpu->code_size);
    EXPECT_EQ(b->invlists->code_size, cpu->code_size);
    EXPECT_FALSE(b->tq.ip_offset);
    expect_same_lists(*cpu, *b, "old inner-product layout");
    const std::vector<float> q = noisy_copies(xb, d, 5, 6);
    Reference r = ivf_search(*cpu, q, k, 4);
    std::vector<float> D(5 * k);
    std::vector<idx_t> I(5 * k);
    g->search(5, q.data(), k, D.data(), I.data());
    expect_agreement(compare(r, D, I), "old inner-product layout", true);
}

TEST(GpuTurboQuant, IVFMoreProbedListsThanOneGrid) {
    SKIP_WITHOUT_GPU();
    StandardGpuResources res;
    const size_t d = 16, nlist = 70000, nb = 3000;
    std::vector<float> cent = gaussian(nlist, d, 31);
    auto* quant = new faiss::IndexFlatL2(d);
    quant->add(nlist, cent.data());
    IndexIVFTurboQuant cpu(quant, d, nlist, 4, kMSE, faiss::METRIC_L2);
    cpu.own_fields = true;
    std::vector<float> xb = gaussian(nb, d, 32);
    cpu.train(nb, xb.data()); // the quantizer is trained: the codec alone
    ASSERT_EQ(cpu.quantizer->ntotal, (idx_t)nlist);
    cpu.add(nb, xb.data());
    GpuIndexIVFTurboQuant g(&res, cpu);
    std::vector<float> q = noisy_copies(xb, d, 3, 33);
    for (size_t nq : {1, 3}) {
        const size_t k = 20;
        std::vector<float> qq(q.begin(), q.begin() + nq * d);
        Reference r = ivf_search(cpu, qq, k, nlist);
        faiss::SearchParametersIVF p;
        p.nprobe = nlist;
        std::vector<float> D(nq * k);
        std::vector<idx_t> I(nq * k);
        g.search(nq, qq.data(), k, D.data(), I.data(), &p);
        expect_agreement(
            compare(r, D, I), "nprobe=70000 nq=" + std::to_string(nq), true);
    }
}

// every query probes every list: a list's codes are decoded once for up to
// 8 of the queries probing it (items of 1, 2, 3-4 and 5-8 rows, and lists
// taken by several items), each query's results still the CPU's bit for bit
TEST(GpuTurboQuant, IVFQueriesSharingListsLikeCpu) {
    SKIP_WITHOUT_GPU();
    StandardGpuResources res;
    const size_t d = 32, nlist = 8, nb = scaled(4000), k = 15;
    std::vector<float> xb = gaussian(nb, d, 51);
    std::vector<float> q = noisy_copies(xb, d, 17, 52);
    const Codec codecs[] = {
        kMse4,
        {"prod3", 3, kPROD, false, false, kHad, kQHad},
    };
    for (const Codec& c : codecs) {
        for (faiss::MetricType m :
             {faiss::METRIC_L2, faiss::METRIC_INNER_PRODUCT}) {
            auto cpu = make_ivf(d, nlist, c, m, true, xb);
            cpu->add(nb, xb.data());
            GpuIndexIVFTurboQuant g(&res, *cpu);
            // (nq, queries per list): 17 queries also 3 and 1 to a list
            const std::pair<size_t, int> runs[] = {
                {1, 8}, {2, 8}, {3, 8}, {5, 8}, {9, 8}, {17, 8}, {17, 3},
                {17, 1}};
            for (auto [nq, qpl] : runs) {
                g.set_queries_per_list(qpl);
                std::vector<float> qq(q.begin(), q.begin() + nq * d);
                Reference r = ivf_search(*cpu, qq, k, nlist);
                faiss::SearchParametersIVF p;
                p.nprobe = nlist;
                std::vector<float> D(nq * k);
                std::vector<idx_t> I(nq * k);
                g.search(nq, qq.data(), k, D.data(), I.data(), &p);
                expect_agreement(
                    compare(r, D, I),
                    std::string(c.name) +
                        (m == faiss::METRIC_L2 ? " L2" : " IP") +
                        " nq=" + std::to_string(nq) +
                        " per list=" + std::to_string(qpl),
                    true);
            }
            EXPECT_THROW(g.set_queries_per_list(0), faiss::FaissException);
            EXPECT_THROW(g.set_queries_per_list(9), faiss::FaissException);
        }
    }
}

// IVF at the largest d: the lists kernel stages 2 query vectors per block
// for MSE, 1 for PROD (shared memory), so 3 queries to a list take 2 and 3
// blocks
TEST(GpuTurboQuant, IVFHighDimensionLikeCpu) {
    SKIP_WITHOUT_GPU();
    StandardGpuResources res;
    const Codec codecs[] = {
        {"mse4", 4, kMSE, true, false, kHad, kQGauss},
        {"prod3", 3, kPROD, false, false, kHad, kQHad},
    };
    const size_t d = 4096, nb = 300, nq = 3, k = 10;
    std::vector<float> xb = gaussian(nb, d, 11);
    std::vector<float> q = noisy_copies(xb, d, nq, 10);
    for (const Codec& c : codecs) {
        auto cpu = make_ivf(d, 4, c, faiss::METRIC_L2, true, xb);
        cpu->add(nb, xb.data());
        GpuIndexIVFTurboQuant g(&res, *cpu);
        Reference r = ivf_search(*cpu, q, k, 4);
        faiss::SearchParametersIVF p;
        p.nprobe = 4;
        std::vector<float> D(nq * k);
        std::vector<idx_t> I(nq * k);
        g.search(nq, q.data(), k, D.data(), I.data(), &p);
        expect_agreement(
            compare(r, D, I), std::string(c.name) + " IVF d=4096", true);
    }
}

TEST(GpuTurboQuant, IVFFastScanClonesAsRowCodes) {
    // lists in blocks go to the GPU as the codec's row codes
    SKIP_WITHOUT_GPU();
    StandardGpuResources res;
    const size_t d = 48, nlist = 16, nb = scaled(8000), k = 10;
    std::vector<float> xb = gaussian(nb, d, 29);
    IndexIVFTurboQuantFastScan fs(new faiss::IndexFlatL2(d), d, nlist, 2);
    fs.own_fields = true;
    fs.train(nb, xb.data());
    fs.add(nb, xb.data());
    std::unique_ptr<faiss::Index> g(index_cpu_to_gpu(&res, 0, &fs));
    std::unique_ptr<faiss::Index> back(index_gpu_to_cpu(g.get()));
    auto* b = dynamic_cast<IndexIVFTurboQuant*>(back.get());
    ASSERT_TRUE(b);
    size_t bad = 0;
    for (size_t l = 0; l < nlist; l++) {
        size_t n = fs.invlists->list_size(l);
        ASSERT_EQ(n, b->invlists->list_size(l));
        ListRows rf(*fs.invlists, l), rb(*b->invlists, l);
        bad += memcmp(rf.get(), rb.get(), n * fs.code_size) != 0;
    }
    EXPECT_EQ(bad, 0u);
    std::vector<float> q = noisy_copies(xb, d, 11, 3);
    Reference r = ivf_search(*b, q, k, 4);
    faiss::SearchParametersIVF p;
    p.nprobe = 4;
    std::vector<float> D(11 * k);
    std::vector<idx_t> I(11 * k);
    g->search(11, q.data(), k, D.data(), I.data(), &p);
    expect_agreement(compare(r, D, I), "IVF fast-scan clone", true);
}

/// lists of two CPU IVF indexes hold the same (id, code) pairs, in any
/// order (FAISS's remove_ids moves a list's last entry into the hole)
void expect_same_list_sets(
    const IndexIVFTurboQuant& a,
    const IndexIVFTurboQuant& b,
    const char* what) {
    ASSERT_EQ(a.nlist, b.nlist);
    const size_t cs = a.code_size;
    auto entries = [cs](const IndexIVFTurboQuant& x, size_t l) {
        size_t n = x.invlists->list_size(l);
        std::vector<std::vector<uint8_t>> e(n);
        if (n == 0) {
            return e;
        }
        faiss::InvertedLists::ScopedCodes c(x.invlists, l);
        faiss::InvertedLists::ScopedIds ids(x.invlists, l);
        for (size_t i = 0; i < n; i++) {
            idx_t id = ids[i];
            e[i].assign((const uint8_t*)&id, (const uint8_t*)&id + 8);
            e[i].insert(e[i].end(), c.get() + i * cs, c.get() + (i + 1) * cs);
        }
        std::sort(e.begin(), e.end());
        return e;
    };
    size_t bad = 0;
    for (size_t l = 0; l < a.nlist; l++) {
        bad += entries(a, l) != entries(b, l);
    }
    EXPECT_EQ(bad, 0u) << what << ": lists differ";
}

TEST(GpuTurboQuant, IVFReconstructAndRemoveIdsLikeCpu) {
    SKIP_WITHOUT_GPU();
    StandardGpuResources res;
    const size_t d = 32, nlist = 16, nb = scaled(8000);
    std::vector<float> xb = gaussian(nb, d, 29);
    for (bool residual : {true, false}) {
        auto cpu = make_ivf(
            d,
            nlist,
            {"mse4", 4, kMSE, true, !residual, RotationType::AUTO, kQGauss},
            faiss::METRIC_L2,
            residual,
            xb);
        cpu->add(nb, xb.data());
        GpuIndexIVFTurboQuant g(&res, *cpu);
        // by id on the CPU side too (ids stop being 0..ntotal-1 below)
        cpu->set_direct_map_type(faiss::DirectMap::Hashtable);
        auto expect_reconstruct_equal = [&](const char* what) {
            std::vector<float> a(d), b(d);
            for (idx_t key : {idx_t(0), idx_t(1), idx_t(nb / 2), idx_t(nb - 1)}) {
                if (key >= 100 && key < 400) {
                    continue; // removed below
                }
                cpu->reconstruct(key, a.data());
                g.reconstruct(key, b.data());
                EXPECT_EQ(a, b) << what << " key " << key;
            }
        };
        expect_reconstruct_equal("before remove_ids");
        std::vector<float> tmp(d);
        EXPECT_THROW(g.reconstruct(nb, tmp.data()), faiss::FaissException);

        faiss::IDSelectorRange sel(100, 400);
        // FAISS removes with a hashtable direct map only by IDSelectorArray
        cpu->set_direct_map_type(faiss::DirectMap::NoMap);
        EXPECT_EQ(g.remove_ids(sel), cpu->remove_ids(sel));
        cpu->set_direct_map_type(faiss::DirectMap::Hashtable);
        ASSERT_EQ(g.ntotal, cpu->ntotal);
        EXPECT_EQ(g.remove_ids(sel), 0u);
        EXPECT_THROW(g.reconstruct(150, tmp.data()), faiss::FaissException);
        std::unique_ptr<IndexIVFTurboQuant> back(g.toCpu());
        expect_same_list_sets(*cpu, *back, "after remove_ids");
        expect_reconstruct_equal("after remove_ids");

        std::vector<float> q = noisy_copies(xb, d, 11, 31);
        const size_t k = 20, nprobe = 4;
        Reference r = ivf_search(*cpu, q, k, nprobe);
        faiss::SearchParametersIVF p;
        p.nprobe = nprobe;
        std::vector<float> D(11 * k);
        std::vector<idx_t> I(11 * k);
        g.search(11, q.data(), k, D.data(), I.data(), &p);
        expect_agreement(compare(r, D, I), "IVF after remove_ids", true);
        // adding after a removal: new positions, same lists as the CPU's
        cpu->set_direct_map_type(faiss::DirectMap::NoMap); // ids repeat now
        cpu->add(50, xb.data());
        g.add(50, xb.data());
        back.reset(g.toCpu());
        expect_same_list_sets(*cpu, *back, "add after remove_ids");
    }
}

/// search with queries and results in device memory equals the host search
void expect_device_search_equal(
    const faiss::Index& g, const std::vector<float>& q, size_t k) {
    const size_t nq = q.size() / g.d;
    std::vector<float> D(nq * k);
    std::vector<idx_t> I(nq * k);
    g.search(nq, q.data(), k, D.data(), I.data());
    auto dq = to_device_array(q);
    auto dD = to_device_array(std::vector<float>(nq * k));
    auto dI = to_device_array(std::vector<idx_t>(nq * k));
    g.search(nq, dq.get(), k, dD.get(), dI.get());
    EXPECT_EQ(to_host_array(dD, nq * k), D);
    EXPECT_EQ(to_host_array(dI, nq * k), I);
    // device queries, host results
    std::vector<float> D2(nq * k);
    std::vector<idx_t> I2(nq * k);
    g.search(nq, dq.get(), k, D2.data(), I2.data());
    EXPECT_EQ(D2, D);
    EXPECT_EQ(I2, I);
}

// an index made on the GPU side and trained there (on the host, by FAISS's
// k-means) holds the lists a CPU index trained on the same vectors holds,
// and searches as it does; untrained, it refuses add and search
TEST(GpuTurboQuant, IVFTrainedOnGpuSideEqualsCpu) {
    SKIP_WITHOUT_GPU();
    StandardGpuResources res;
    const size_t d = 32, nlist = 16, nb = scaled(8000);
    std::vector<float> xb = gaussian(nb, d, 29);
    std::vector<float> q = noisy_copies(xb, d, 9, 3);
    struct Case {
        Codec c;
        faiss::MetricType m;
        bool residual;
    };
    const Case cases[] = {
        {kMse4, faiss::METRIC_L2, true},
        {{"mse2 centered ip, no residual",
          2,
          kMSE,
          true,
          true,
          RotationType::AUTO,
          kQGauss},
         faiss::METRIC_INNER_PRODUCT,
         false},
    };
    for (const Case& cs : cases) {
        const Codec& c = cs.c;
        auto cpu = make_ivf(d, nlist, c, cs.m, cs.residual, xb);
        GpuIndexIVFTurboQuant g(
            &res,
            d,
            nlist,
            c.bits,
            c.variant,
            cs.m,
            cs.residual,
            c.centered,
            c.debiased,
            c.rot,
            c.qjl,
            1234);
        EXPECT_FALSE(g.is_trained);
        std::vector<float> D(9 * 10);
        std::vector<idx_t> I(9 * 10);
        EXPECT_THROW(g.add(nb, xb.data()), faiss::FaissException);
        EXPECT_THROW(
            g.search(9, q.data(), 10, D.data(), I.data()),
            faiss::FaissException);
        EXPECT_THROW(g.toCpu(), faiss::FaissException);
        // the training vectors from device memory: copied to the host
        g.train(nb, to_device_array(xb).get());
        ASSERT_TRUE(g.is_trained);
        cpu->add(nb, xb.data());
        g.add(nb, xb.data());
        std::unique_ptr<IndexIVFTurboQuant> back(g.toCpu());
        std::vector<float> ca(nlist * d), cb(nlist * d);
        cpu->quantizer->reconstruct_n(0, nlist, ca.data());
        back->quantizer->reconstruct_n(0, nlist, cb.data());
        EXPECT_EQ(ca, cb) << c.name << ": centroids differ";
        EXPECT_EQ(cpu->tq.mean, back->tq.mean) << c.name;
        expect_same_lists(*cpu, *back, c.name);
        Reference r = ivf_search(*cpu, q, 10, 4);
        faiss::SearchParametersIVF p;
        p.nprobe = 4;
        g.search(9, q.data(), 10, D.data(), I.data(), &p);
        expect_agreement(compare(r, D, I), c.name, true);
        EXPECT_THROW(g.train(nb, xb.data()), faiss::FaissException);
        std::vector<float> bad(xb.begin(), xb.begin() + 100 * d);
        bad[50 * d + 1] = NAN; // refused before the coarse quantizer
        EXPECT_THROW(g.add(100, bad.data()), faiss::FaissException);
        EXPECT_EQ(g.ntotal, (idx_t)nb);
    }
    EXPECT_THROW(
        GpuIndexIVFTurboQuant(&res, d, nlist, 4, kMSE, faiss::METRIC_L1),
        faiss::FaissException);
    EXPECT_THROW(
        GpuIndexIVFTurboQuant(&res, d, 0, 4), faiss::FaissException);
}

TEST(GpuTurboQuant, DeviceVectorsQueriesAndResults) {
    SKIP_WITHOUT_GPU();
    StandardGpuResources res;
    const size_t d = 32, nb = scaled(4000), k = 10;
    std::vector<float> xb = gaussian(nb, d, 41);
    std::vector<float> q = noisy_copies(xb, d, 7, 43);
    auto dx_buf = to_device_array(xb);
    float* dx = dx_buf.get();
    EXPECT_TRUE(isDevicePointer(dx));
    EXPECT_TRUE(isDevicePointer(dx + nb * d - 1));
    EXPECT_FALSE(isDevicePointer(xb.data()));

    const Codec c = kMse4;
    auto cpu = make_cpu(d, c);
    cpu->add(nb, xb.data());
    GpuIndexTurboQuant g(&res, *cpu);
    GpuIndexTurboQuant g2(&res, *make_cpu(d, c));
    g2.add(nb, dx); // device vectors through the plain add()
    EXPECT_EQ(gpu_codes(g2), gpu_codes(g));
    expect_device_search_equal(g, q, k);

    auto ivf = make_ivf(d, 8, c, faiss::METRIC_L2, true, xb);
    GpuIndexIVFTurboQuant gi(&res, *ivf);
    std::vector<idx_t> ids(nb);
    for (size_t i = 0; i < nb; i++) {
        ids[i] = 3 * i + 1;
    }
    gi.add_with_ids(nb, dx, to_device_array(ids).get());
    ivf->add_with_ids(nb, xb.data(), ids.data());
    std::unique_ptr<IndexIVFTurboQuant> back(gi.toCpu());
    expect_same_lists(*ivf, *back, "IVF add from device");
    gi.nprobe = 3;
    expect_device_search_equal(gi, q, k);
}

// train() takes device vectors as add() does (it read them on the host);
// the device-only entry points refuse host memory; an empty index refuses
// bad queries as the CPU's does
TEST(GpuTurboQuant, DevicePointerChecks) {
    SKIP_WITHOUT_GPU();
    StandardGpuResources res;
    const size_t d = 32, nb = 300;
    std::vector<float> xb = gaussian(nb, d, 45);
    auto dx_buf = to_device_array(xb);
    float* dx = dx_buf.get();
    Codec c{"mse4 centered", 4, kMSE, true, true, RotationType::AUTO, kQGauss};
    auto cpu = make_cpu(d, c);
    GpuIndexTurboQuant g(&res, *cpu), gh(&res, *cpu);
    g.train(nb, dx);
    gh.train(nb, xb.data());
    EXPECT_EQ(g.codec().mean, gh.codec().mean);
    EXPECT_FALSE(g.codec().mean.empty());

    EXPECT_THROW(g.add_from_device(nb, xb.data()), faiss::FaissException);
    std::vector<uint8_t> codes(nb * g.code_size());
    auto dcodes_buf = to_device_array(codes);
    uint8_t* dcodes = dcodes_buf.get();
    EXPECT_THROW(
        g.encode_device(nb, xb.data(), dcodes), faiss::FaissException);
    EXPECT_THROW(g.encode_device(nb, dx, codes.data()), faiss::FaissException);
    EXPECT_EQ(g.ntotal, 0);

    std::vector<float> bad(d, 0.0f), D(1);
    std::vector<idx_t> I(1);
    bad[3] = NAN;
    EXPECT_THROW(
        cpu->search(1, bad.data(), 1, D.data(), I.data()),
        faiss::FaissException);
    EXPECT_THROW(
        g.search(1, bad.data(), 1, D.data(), I.data()), faiss::FaissException);
}

// the CPU indexes' search_defaults come back from a round trip through the
// GPU (which always scores exactly and keeps them only for the way back)
TEST(GpuTurboQuant, SearchDefaultsSurviveRoundTrip) {
    SKIP_WITHOUT_GPU();
    StandardGpuResources res;
    const size_t d = 32, nb = 400;
    std::vector<float> xb = gaussian(nb, d, 46);
    const Codec c = kMse4;
    auto flat = make_cpu(d, c);
    flat->add(nb, xb.data());
    flat->search_defaults.scan_mode = TQ_SCAN_EXACT;
    flat->search_defaults.rerank_factor = 7.5f;
    flat->search_defaults.prescan = 300;
    auto ivf = make_ivf(d, 8, c, faiss::METRIC_L2, true, xb);
    ivf->add(nb, xb.data());
    ivf->search_defaults.scan_mode = TQ_SCAN_EXACT;
    ivf->search_defaults.rerank_factor = 3.0f;
    for (faiss::Index* cpu :
         {(faiss::Index*)flat.get(), (faiss::Index*)ivf.get()}) {
        std::unique_ptr<faiss::Index> g(index_cpu_to_gpu(&res, 0, cpu));
        std::unique_ptr<faiss::Index> back(index_gpu_to_cpu(g.get()));
        const SearchParametersTurboQuant* want = nullptr;
        const SearchParametersTurboQuant* got = nullptr;
        if (auto* f = dynamic_cast<IndexTurboQuant*>(cpu)) {
            want = &f->search_defaults;
            got = &dynamic_cast<IndexTurboQuant&>(*back).search_defaults;
        } else {
            want = &dynamic_cast<IndexIVFTurboQuant*>(cpu)->search_defaults;
            got = &dynamic_cast<IndexIVFTurboQuant&>(*back).search_defaults;
        }
        EXPECT_EQ(got->scan_mode, want->scan_mode);
        EXPECT_EQ(got->rerank_factor, want->rerank_factor);
        EXPECT_EQ(got->prescan, want->prescan);
    }
}

} // namespace
