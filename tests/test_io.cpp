/**
 * faiss_turbo::write_index / read_index: round trips of every supported
 * index type and container, plain FAISS pass-through, golden files, and
 * corrupted / truncated / forged input (always a FaissException).
 */
#include <gtest/gtest.h>

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <new>
#include <string>

#include <faiss/IndexFlat.h>
#include <faiss/IndexHNSW.h>
#include <faiss/IndexIDMap.h>
#include <faiss/IndexIVFFlat.h>
#include <faiss/IndexPreTransform.h>
#include <faiss/IndexRefine.h>
#include <faiss/IndexReplicas.h>
#include <faiss/IndexShards.h>
#include <faiss/VectorTransform.h>
#include <faiss/impl/FaissException.h>
#include <faiss/impl/io.h>
#include <faiss/index_io.h>

#include <faiss_turbo/IndexHNSWTurboQuant.h>
#include <faiss_turbo/IndexIVFTurboQuant.h>
#include <faiss_turbo/IndexTurboQuant.h>
#include <faiss_turbo/IndexTurboQuantFastScan.h>
#include <faiss_turbo/impl/io_sections.h>
#include <faiss_turbo/index_factory.h>
#include <faiss_turbo/index_io.h>

#include "golden/golden_cases.h"
#include "test_util.h"

/*************************************************************
 * Allocation tracking: the largest single allocation while armed, to show
 * that forged sizes do not drive allocations
 *************************************************************/

namespace {
std::atomic<bool> g_track{false};
std::atomic<size_t> g_max_alloc{0};
} // namespace

void* operator new(size_t n) {
    if (g_track.load(std::memory_order_relaxed)) {
        size_t m = g_max_alloc.load();
        while (n > m && !g_max_alloc.compare_exchange_weak(m, n)) {
        }
    }
    void* p = malloc(n ? n : 1);
    if (!p) {
        throw std::bad_alloc();
    }
    return p;
}

void operator delete(void* p) noexcept {
    free(p);
}

void operator delete(void* p, size_t) noexcept {
    free(p);
}

namespace {

using faiss_turbo::idx_t;
using faiss_turbo::IndexIVFTurboQuant;
using faiss_turbo::IndexTurboQuant;
using faiss_turbo::QJLType;
using faiss_turbo::RotationType;
using faiss_turbo::SearchParametersTurboQuant;
using faiss_turbo::TQ_SCAN_EXACT;
using faiss_turbo::TQ_SCAN_INT8;
using faiss_turbo::TQVariant;
using Bytes = std::vector<uint8_t>;
using IndexPtr = std::unique_ptr<faiss::Index>;

constexpr size_t kNb = 300, kNq = 10, kK = 7;

std::vector<float> data(size_t n, size_t d, uint64_t seed) {
    return tqtest::random_gaussian(n, d, seed);
}

struct Result {
    std::vector<float> D;
    std::vector<idx_t> I;
};

Result search(const faiss::Index& idx, const std::vector<float>& xq) {
    size_t nq = xq.size() / idx.d;
    Result r;
    r.D.resize(nq * kK);
    r.I.resize(nq * kK);
    idx.search(nq, xq.data(), kK, r.D.data(), r.I.data());
    return r;
}

Bytes serialize(const faiss::Index* idx) {
    return faiss_turbo::serialize_index(idx);
}

IndexPtr deserialize(const Bytes& b) {
    return IndexPtr(faiss_turbo::deserialize_index(b));
}

std::string tmp_path(const char* name) {
    return testing::TempDir() + "/tq_io_" + std::to_string(getpid()) + "_" +
           name;
}

/*************************************************************
 * Comparisons
 *************************************************************/

void expect_same_codec(
        const faiss_turbo::TurboQuantizer& a,
        const faiss_turbo::TurboQuantizer& b) {
    using namespace faiss_turbo;
    EXPECT_EQ(a.d, b.d);
    EXPECT_EQ(a.variant, b.variant);
    EXPECT_EQ(a.bits, b.bits);
    EXPECT_EQ(a.debiased, b.debiased);
    EXPECT_EQ(a.rotation_type, b.rotation_type);
    EXPECT_EQ(a.qjl_type, b.qjl_type);
    EXPECT_EQ(a.seed, b.seed);
    EXPECT_EQ(a.mean, b.mean);
    EXPECT_EQ(a.n_hi, b.n_hi);
    EXPECT_EQ(a.b_hi, b.b_hi);
    EXPECT_EQ(a.b_lo, b.b_lo);
    EXPECT_EQ(a.code_size, b.code_size);
    if (auto da = dynamic_cast<const DenseRotation*>(a.rotation.get())) {
        auto db = dynamic_cast<const DenseRotation*>(b.rotation.get());
        ASSERT_TRUE(db);
        EXPECT_EQ(da->matrix, db->matrix);
    } else {
        auto ha = dynamic_cast<const HadamardRotation*>(a.rotation.get());
        auto hb = dynamic_cast<const HadamardRotation*>(b.rotation.get());
        ASSERT_TRUE(ha && hb);
        EXPECT_EQ(ha->nrounds, hb->nrounds);
        EXPECT_EQ(ha->signs, hb->signs);
        EXPECT_EQ(ha->perms, hb->perms);
    }
    EXPECT_EQ(a.cb_lo->centroids, b.cb_lo->centroids);
    EXPECT_EQ(a.cb_lo->thresholds, b.cb_lo->thresholds);
    EXPECT_EQ(a.cb_hi->centroids, b.cb_hi->centroids);
    EXPECT_EQ(a.cb_hi->thresholds, b.cb_hi->thresholds);
    ASSERT_EQ(!a.qjl, !b.qjl);
    if (a.qjl) {
        EXPECT_EQ(a.qjl->type, b.qjl->type);
        EXPECT_EQ(a.qjl->gaussian, b.qjl->gaussian);
        if (a.qjl->had) {
            EXPECT_EQ(a.qjl->had->signs, b.qjl->had->signs);
            EXPECT_EQ(a.qjl->had->perms, b.qjl->had->perms);
        }
    }
}

/// our indexes inside a and b have identical codecs and codes
void expect_same_turbo_parts(const faiss::Index* a, const faiss::Index* b) {
    if (auto fa = dynamic_cast<const IndexTurboQuant*>(a)) {
        auto fb = dynamic_cast<const IndexTurboQuant*>(b);
        ASSERT_TRUE(fb);
        expect_same_codec(fa->tq, fb->tq);
        EXPECT_EQ(fa->centered, fb->centered);
        EXPECT_TRUE(fa->codes == fb->codes);
    } else if (auto ia = dynamic_cast<const IndexIVFTurboQuant*>(a)) {
        auto ib = dynamic_cast<const IndexIVFTurboQuant*>(b);
        ASSERT_TRUE(ib);
        expect_same_codec(ia->tq, ib->tq);
        EXPECT_EQ(ia->nprobe, ib->nprobe);
        EXPECT_EQ(ia->by_residual, ib->by_residual);
        for (size_t l = 0; l < ia->nlist; l++) {
            size_t n = ia->invlists->list_size(l);
            ASSERT_EQ(n, ib->invlists->list_size(l));
            EXPECT_EQ(
                    0,
                    memcmp(ia->invlists->get_codes(l),
                           ib->invlists->get_codes(l),
                           n * ia->code_size));
            EXPECT_EQ(
                    0,
                    memcmp(ia->invlists->get_ids(l),
                           ib->invlists->get_ids(l),
                           n * sizeof(idx_t)));
        }
        expect_same_turbo_parts(ia->quantizer, ib->quantizer);
    } else if (auto ma = dynamic_cast<const faiss::IndexIDMap*>(a)) {
        auto mb = dynamic_cast<const faiss::IndexIDMap*>(b);
        ASSERT_TRUE(mb);
        EXPECT_EQ(ma->id_map, mb->id_map);
        expect_same_turbo_parts(ma->index, mb->index);
    }
}

/// b is a faithful copy of a: same class, same answers bit for bit, same
/// codec and codes, and it serializes to the same bytes. An IndexHNSW over
/// our storage reads back as IndexHNSWTurboQuant (the same search, with
/// its queries checked first)
void expect_same_index(
        const faiss::Index* a,
        const faiss::Index* b,
        const std::vector<float>& xq) {
    ASSERT_TRUE(b);
    auto ha = dynamic_cast<const faiss::IndexHNSW*>(a);
    if (ha && (dynamic_cast<const faiss_turbo::IndexTurboQuant*>(ha->storage) ||
               dynamic_cast<const faiss_turbo::IndexTurboQuantFastScan*>(
                       ha->storage))) {
        EXPECT_EQ(typeid(faiss_turbo::IndexHNSWTurboQuant), typeid(*b));
    } else {
        EXPECT_EQ(typeid(*a), typeid(*b));
    }
    EXPECT_EQ(a->d, b->d);
    EXPECT_EQ(a->ntotal, b->ntotal);
    EXPECT_EQ(a->metric_type, b->metric_type);
    EXPECT_EQ(a->is_trained, b->is_trained);
    if (a->is_trained) {
        Result ra = search(*a, xq), rb = search(*b, xq);
        EXPECT_EQ(ra.I, rb.I);
        EXPECT_EQ(ra.D, rb.D);
    }
    expect_same_turbo_parts(a, b);
    EXPECT_TRUE(serialize(a) == serialize(b));
}

/// every way in and out: file name, FILE*, IOWriter/IOReader, buffers,
/// clone_index
void check_round_trips(const faiss::Index* idx, const std::vector<float>& xq) {
    SCOPED_TRACE(faiss_turbo::index_contains_turbo(idx) ? "turbo" : "plain");
    std::string path = tmp_path("rt.bin");
    faiss_turbo::write_index(idx, path.c_str());
    IndexPtr a(faiss_turbo::read_index(path.c_str()));
    expect_same_index(idx, a.get(), xq);

    FILE* f = tmpfile();
    ASSERT_TRUE(f);
    faiss_turbo::write_index(idx, f);
    rewind(f);
    IndexPtr b(faiss_turbo::read_index(f));
    fclose(f);
    expect_same_index(idx, b.get(), xq);

    faiss::VectorIOWriter vw;
    faiss_turbo::write_index(idx, &vw);
    faiss::VectorIOReader vr;
    vr.data = vw.data;
    IndexPtr c(faiss_turbo::read_index(&vr));
    expect_same_index(idx, c.get(), xq);

    IndexPtr d = deserialize(serialize(idx));
    expect_same_index(idx, d.get(), xq);
    EXPECT_TRUE(vw.data == serialize(idx));

    IndexPtr e(faiss_turbo::clone_index(idx));
    expect_same_index(idx, e.get(), xq);
    unlink(path.c_str());
}

/*************************************************************
 * Index builders
 *************************************************************/

IndexTurboQuant*
make_tq(size_t d,
        float bits,
        TQVariant v,
        faiss::MetricType m,
        const std::vector<float>& xb,
        bool centered = false,
        RotationType rot = RotationType::AUTO,
        QJLType qjl = QJLType::GAUSSIAN,
        bool debiased = true) {
    auto idx = new IndexTurboQuant(d, bits, v, m, centered, debiased, rot, qjl);
    idx->train(xb.size() / d, xb.data());
    idx->add(xb.size() / d, xb.data());
    return idx;
}

IndexIVFTurboQuant* make_ivf(
        faiss::Index* quantizer,
        size_t d,
        size_t nlist,
        float bits,
        TQVariant v,
        faiss::MetricType m,
        bool by_residual,
        bool centered,
        const std::vector<float>& xb) {
    auto idx = new IndexIVFTurboQuant(
            quantizer, d, nlist, bits, v, m, by_residual, centered);
    idx->own_fields = true;
    idx->nprobe = 3;
    idx->train(xb.size() / d, xb.data());
    idx->add(xb.size() / d, xb.data());
    return idx;
}

std::vector<idx_t> some_ids(size_t n) {
    std::vector<idx_t> ids(n);
    for (size_t i = 0; i < n; i++) {
        ids[i] = 1000 + 7 * (idx_t)i;
    }
    return ids;
}

/// a small mix: IDMap2 over Refine over IVF (HNSW quantizer), PROD codes
IndexPtr make_nested(size_t d, const std::vector<float>& xb) {
    auto ivf = new IndexIVFTurboQuant(
            new faiss::IndexHNSWFlat(d, 8), d, 8, 3, TQVariant::PROD);
    ivf->own_fields = true;
    ivf->nprobe = 3;
    auto refine = new faiss::IndexRefineFlat(ivf);
    refine->own_fields = true;
    auto idmap = new faiss::IndexIDMap2(refine);
    idmap->own_fields = true;
    size_t n = xb.size() / d;
    std::vector<idx_t> ids = some_ids(n);
    idmap->train(n, xb.data());
    idmap->add_with_ids(n, xb.data(), ids.data());
    return IndexPtr(idmap);
}

/*************************************************************
 * Raw section access (independent of the library's reader)
 *************************************************************/

struct RawSection {
    size_t offset; ///< of the header
    uint32_t tag;
    uint64_t size;
    size_t payload() const {
        return offset + 32;
    }
    size_t end() const {
        return payload() + (size + 7) / 8 * 8;
    }
};

std::vector<RawSection> sections_of(const Bytes& b) {
    std::vector<RawSection> res;
    for (size_t ofs = 0; ofs + 32 <= b.size();) {
        RawSection s;
        s.offset = ofs;
        memcpy(&s.tag, &b[ofs], 4);
        memcpy(&s.size, &b[ofs + 8], 8);
        res.push_back(s);
        ofs = s.end();
    }
    EXPECT_EQ(res.back().end(), b.size());
    return res;
}

const RawSection&
find_section(const std::vector<RawSection>& secs, const char* tag) {
    for (const RawSection& s : secs) {
        if (faiss_turbo::io::fourcc_str(s.tag) == tag) {
            return s;
        }
    }
    throw std::runtime_error(std::string("no section ") + tag);
}

/// recompute the hashes of a section after its bytes were changed
void rehash(Bytes& b, const RawSection& s) {
    using faiss_turbo::io::xxhash64;
    uint64_t ph = xxhash64(&b[s.payload()], s.size);
    memcpy(&b[s.offset + 8], &s.size, 8);
    memcpy(&b[s.offset + 16], &ph, 8);
    uint64_t hh = xxhash64(&b[s.offset], 24);
    memcpy(&b[s.offset + 24], &hh, 8);
}

/// overwrite a value inside a payload and make the checksums valid again,
/// as a forger (not a random corruption) would
template <class T>
void forge(Bytes& b, const RawSection& s, size_t payload_ofs, T v) {
    ASSERT_LE(payload_ofs + sizeof(T), s.size);
    memcpy(&b[s.payload() + payload_ofs], &v, sizeof(T));
    rehash(b, s);
}

/// deserialize must throw a FaissException, and allocate at most max_alloc
/// bytes in one piece on the way
void expect_rejected(const Bytes& b, size_t max_alloc = 64 << 20) {
    g_max_alloc = 0;
    g_track = true;
    bool thrown = false;
    try {
        IndexPtr idx = deserialize(b);
    } catch (const faiss::FaissException&) {
        thrown = true;
    }
    g_track = false;
    EXPECT_TRUE(thrown);
    EXPECT_LE(g_max_alloc.load(), max_alloc);
}

/*************************************************************
 * Hashing
 *************************************************************/

TEST(IOHash, XXH64MatchesTheReference) {
    using faiss_turbo::io::xxhash64;
    // reference values from libxxhash 0.8.1 (XXH64)
    EXPECT_EQ(xxhash64("", 0), 0xef46db3751d8e999ULL);
    EXPECT_EQ(xxhash64("a", 1), 0xd24ec4f1a98c6e5bULL);
    EXPECT_EQ(xxhash64("abc", 3), 0x44bc2cf5ad770999ULL);
    const char* s51 = "0123456789abcdef0123456789abcdef0123456789abcdefXYZ";
    EXPECT_EQ(xxhash64(s51, 51), 0x2068b5be32b6d8dcULL);
    std::string big;
    for (int r = 0; r < 3; r++) {
        for (int i = 0; i < 256; i++) {
            big += (char)i;
        }
    }
    big += "xyz";
    EXPECT_EQ(xxhash64(big.data(), big.size(), 12345), 0x6b1b5d671fb93b43ULL);
    // streaming in uneven pieces gives the same digest
    for (size_t piece : {1, 5, 31, 32, 33, 100}) {
        faiss_turbo::io::XXHash64 h(12345);
        for (size_t i = 0; i < big.size(); i += piece) {
            h.update(big.data() + i, std::min(piece, big.size() - i));
        }
        EXPECT_EQ(h.digest(), 0x6b1b5d671fb93b43ULL) << piece;
    }
}

/*************************************************************
 * Round trips
 *************************************************************/

TEST(IORoundTrip, FlatVariants) {
    struct Cfg {
        size_t d;
        float bits;
        TQVariant v;
        faiss::MetricType m;
        bool centered;
        RotationType rot;
        QJLType qjl;
        bool debiased;
    };
    const auto L2 = faiss::METRIC_L2, IP = faiss::METRIC_INNER_PRODUCT;
    const auto MSE = TQVariant::MSE, PROD = TQVariant::PROD;
    const auto DENSE = RotationType::DENSE, HAD = RotationType::HADAMARD;
    const auto G = QJLType::GAUSSIAN, H = QJLType::HADAMARD;
    std::vector<Cfg> cfgs = {
            {96, 4, MSE, L2, false, HAD, G, true},
            {48, 3, PROD, IP, false, DENSE, G, false},
            {40, 2.5, MSE, L2, true, DENSE, G, true},
            {37, 3.5, PROD, L2, true, HAD, H, false},
            {32, 1, PROD, IP, false, DENSE, G, false}, // 0-bit MSE part
            {33, 8, MSE, IP, false, HAD, G, false},
            {300, 2, MSE, L2, false, RotationType::AUTO, G, true},
            {64, 4, MSE, IP, true, DENSE, G, true}, // ip_offset
            {40, 3, PROD, IP, true, HAD, H, false}, // ip_offset
    };
    for (const Cfg& c : cfgs) {
        SCOPED_TRACE(
                testing::Message() << "d=" << c.d << " bits=" << c.bits
                                   << " variant=" << (int)c.v);
        std::vector<float> xb = data(kNb, c.d, 1), xq = data(kNq, c.d, 2);
        IndexPtr idx(
                make_tq(c.d,
                        c.bits,
                        c.v,
                        c.m,
                        xb,
                        c.centered,
                        c.rot,
                        c.qjl,
                        c.debiased));
        check_round_trips(idx.get(), xq);
    }
}

TEST(IORoundTrip, SearchDefaults) {
    size_t d = 24;
    std::vector<float> xb = data(kNb, d, 1);
    IndexPtr flat(make_tq(d, 4, TQVariant::MSE, faiss::METRIC_L2, xb));
    auto* f = dynamic_cast<IndexTurboQuant*>(flat.get());
    f->search_defaults.scan_mode = TQ_SCAN_EXACT;
    f->search_defaults.rerank_factor = 2.5;
    auto bytes0 = serialize(flat.get());
    IndexPtr fb = deserialize(bytes0);
    auto* f2 = dynamic_cast<IndexTurboQuant*>(fb.get());
    EXPECT_EQ(f2->search_defaults.scan_mode, TQ_SCAN_EXACT);
    EXPECT_EQ(f2->search_defaults.rerank_factor, 2.5f);
    EXPECT_EQ(f2->search_defaults.prescan, 0);
    // prescan: stored only when set (files without it are as before)
    f->search_defaults.scan_mode = TQ_SCAN_INT8;
    f->search_defaults.prescan = 300;
    auto bytes1 = serialize(flat.get());
    EXPECT_NE(bytes1, bytes0);
    IndexPtr fp = deserialize(bytes1);
    auto* f3 = dynamic_cast<IndexTurboQuant*>(fp.get());
    EXPECT_EQ(f3->search_defaults.prescan, 300);
    f->search_defaults.prescan = -1;
    EXPECT_THROW(serialize(flat.get()), faiss::FaissException);
    f->search_defaults.prescan = 0;
    IndexPtr ivf(make_ivf(
            new faiss::IndexFlatL2(d),
            d,
            6,
            3,
            TQVariant::MSE,
            faiss::METRIC_L2,
            true,
            false,
            xb));
    auto* v = dynamic_cast<IndexIVFTurboQuant*>(ivf.get());
    v->search_defaults.rerank_factor = 0;
    IndexPtr vb = deserialize(serialize(ivf.get()));
    auto* v2 = dynamic_cast<IndexIVFTurboQuant*>(vb.get());
    EXPECT_EQ(v2->search_defaults.scan_mode, TQ_SCAN_INT8);
    EXPECT_EQ(v2->search_defaults.rerank_factor, 0.0f);
    // what could not be read back is refused before anything is written
    f->search_defaults.rerank_factor = NAN;
    EXPECT_THROW(serialize(flat.get()), faiss::FaissException);
    f->search_defaults.rerank_factor = 1;
    f->search_defaults.scan_mode = 7;
    EXPECT_THROW(serialize(flat.get()), faiss::FaissException);
}

TEST(IOGolden, FilesWithoutSearchDefaultsReadTheDefaults) {
    // the first golden files predate the stored search_defaults; the
    // fast-scan ones store the defaults
    const SearchParametersTurboQuant def;
    for (const golden::Case& c : golden::cases()) {
        SCOPED_TRACE(c.name);
        std::string path =
                std::string(FAISS_TURBO_GOLDEN_DIR) + "/" + c.name + ".ftq";
        IndexPtr idx(faiss_turbo::read_index(path.c_str()));
        const SearchParametersTurboQuant* sd = nullptr;
        if (auto t = dynamic_cast<IndexTurboQuant*>(idx.get())) {
            sd = &t->search_defaults;
        } else if (
                auto f = dynamic_cast<faiss_turbo::IndexTurboQuantFastScan*>(
                        idx.get())) {
            sd = &f->search_defaults;
        } else if (auto v = dynamic_cast<IndexIVFTurboQuant*>(idx.get())) {
            sd = &v->search_defaults;
        }
        ASSERT_TRUE(sd);
        EXPECT_EQ(sd->scan_mode, def.scan_mode);
        EXPECT_EQ(sd->rerank_factor, def.rerank_factor);
    }
}

TEST(IORoundTrip, EmptyAndUntrainedFlat) {
    std::vector<float> xq = data(kNq, 24, 2);
    IndexTurboQuant empty(24, 3, TQVariant::PROD);
    check_round_trips(&empty, xq);
    IndexTurboQuant untrained(24, 2.5, TQVariant::MSE, faiss::METRIC_L2, true);
    ASSERT_FALSE(untrained.is_trained);
    IndexPtr back = deserialize(serialize(&untrained));
    EXPECT_FALSE(back->is_trained);
    // it trains and adds like the original
    std::vector<float> xb = data(kNb, 24, 1);
    untrained.train(kNb, xb.data());
    untrained.add(kNb, xb.data());
    back->train(kNb, xb.data());
    back->add(kNb, xb.data());
    expect_same_index(&untrained, back.get(), xq);
}

TEST(IORoundTrip, TablesComeFromTheFileNotTheSeed) {
    size_t d = 40;
    std::vector<float> xb = data(kNb, d, 1), xq = data(kNq, d, 2);
    IndexPtr idx(make_tq(d, 3, TQVariant::PROD, faiss::METRIC_L2, xb));
    Bytes b = serialize(idx.get());
    auto secs = sections_of(b);
    const RawSection& pa = find_section(secs, "TQPA");
    // TQPA: u64 d, u32 variant, f32 bits, u8 debiased, u32 rot, u32 qjl,
    // then the u64 seed at byte 25
    forge<uint64_t>(b, pa, 25, 987654321);
    IndexPtr back = deserialize(b);
    auto tq = dynamic_cast<IndexTurboQuant*>(back.get());
    ASSERT_TRUE(tq);
    EXPECT_EQ(tq->tq.seed, 987654321u);
    // same answers: the rotation, codebooks and QJL matrix are the stored
    // ones, not regenerated from the (changed) seed
    Result r0 = search(*idx, xq), r1 = search(*back, xq);
    EXPECT_EQ(r0.I, r1.I);
    EXPECT_EQ(r0.D, r1.D);
}

TEST(IORoundTrip, IVF) {
    size_t d = 32;
    std::vector<float> xb = data(kNb, d, 1), xq = data(kNq, d, 2);
    const auto L2 = faiss::METRIC_L2, IP = faiss::METRIC_INNER_PRODUCT;
    IndexPtr a(make_ivf(
            new faiss::IndexFlatL2(d),
            d,
            8,
            4,
            TQVariant::MSE,
            L2,
            true,
            false,
            xb));
    check_round_trips(a.get(), xq);
    IndexPtr b(make_ivf(
            new faiss::IndexFlatIP(d),
            d,
            8,
            3,
            TQVariant::PROD,
            IP,
            false,
            false,
            xb));
    check_round_trips(b.get(), xq);
    IndexPtr c(make_ivf(
            new faiss::IndexFlatL2(d),
            d,
            4,
            2.5,
            TQVariant::MSE,
            L2,
            false,
            true,
            xb));
    check_round_trips(c.get(), xq);
    // inner products with residuals, and centered without: <c, r> or
    // <mean, r> in each code (ip_offset)
    for (bool residual : {true, false}) {
        IndexPtr e(make_ivf(
                new faiss::IndexFlatIP(d),
                d,
                8,
                2,
                TQVariant::MSE,
                IP,
                residual,
                !residual,
                xb));
        ASSERT_TRUE(dynamic_cast<IndexIVFTurboQuant*>(e.get())->tq.ip_offset);
        check_round_trips(e.get(), xq);
    }
    // a direct map is rebuilt from the lists
    auto ivf = dynamic_cast<IndexIVFTurboQuant*>(a.get());
    ivf->set_direct_map_type(faiss::DirectMap::Hashtable);
    check_round_trips(a.get(), xq);
    IndexPtr back = deserialize(serialize(a.get()));
    std::vector<float> r0(d), r1(d);
    a->reconstruct(17, r0.data());
    back->reconstruct(17, r1.data());
    EXPECT_EQ(r0, r1);
}

TEST(IORoundTrip, IVFWithHNSWAndTurboQuantizers) {
    size_t d = 32;
    std::vector<float> xb = data(kNb, d, 1), xq = data(kNq, d, 2);
    IndexPtr a(make_ivf(
            new faiss::IndexHNSWFlat(d, 8),
            d,
            16,
            4,
            TQVariant::MSE,
            faiss::METRIC_L2,
            true,
            false,
            xb));
    check_round_trips(a.get(), xq);
    // a coarse quantizer that is itself one of ours
    auto q = new IndexTurboQuant(d, 8, TQVariant::MSE);
    IndexPtr b(make_ivf(
            q, d, 8, 3, TQVariant::MSE, faiss::METRIC_L2, false, false, xb));
    check_round_trips(b.get(), xq);
}

TEST(IORoundTrip, Containers) {
    size_t d = 32;
    std::vector<float> xb = data(kNb, d, 1), xq = data(kNq, d, 2);
    std::vector<idx_t> ids = some_ids(kNb);
    auto tq = [&] { return new IndexTurboQuant(d, 4, TQVariant::MSE); };
    {
        faiss::IndexIDMap m(tq());
        m.own_fields = true;
        m.add_with_ids(kNb, xb.data(), ids.data());
        check_round_trips(&m, xq);
    }
    {
        faiss::IndexIDMap2 m(tq());
        m.own_fields = true;
        m.add_with_ids(kNb, xb.data(), ids.data());
        check_round_trips(&m, xq);
        IndexPtr back = deserialize(serialize(&m));
        std::vector<float> r0(d), r1(d);
        m.reconstruct(ids[5], r0.data());
        back->reconstruct(ids[5], r1.data());
        EXPECT_EQ(r0, r1);
    }
    {
        faiss::IndexPreTransform p(
                new faiss::PCAMatrix(d, 16), new IndexTurboQuant(16, 4));
        p.own_fields = true;
        p.prepend_transform(new faiss::RandomRotationMatrix(d, d));
        p.train(kNb, xb.data());
        p.add(kNb, xb.data());
        check_round_trips(&p, xq);
    }
    {
        faiss::IndexRefine r(tq(), new faiss::IndexFlatL2(d));
        r.own_fields = r.own_refine_index = true;
        r.k_factor = 3;
        r.add(kNb, xb.data());
        check_round_trips(&r, xq);
    }
    {
        faiss::IndexRefineFlat r(tq());
        r.own_fields = true;
        r.add(kNb, xb.data());
        check_round_trips(&r, xq);
    }
    {
        faiss::IndexShards s((idx_t)d, false, true);
        faiss_turbo::set_owns_members(s);
        s.add_shard(tq());
        s.add_shard(tq());
        s.add(kNb, xb.data());
        check_round_trips(&s, xq);
    }
    {
        faiss::IndexHNSW h(tq(), 8);
        h.own_fields = true;
        h.add(kNb, xb.data());
        check_round_trips(&h, xq);
    }
    { // fast-scan storage: IndexHNSWTurboQuant too (it was a plain IndexHNSW)
        faiss::IndexHNSW h(new faiss_turbo::IndexTurboQuantFastScan(d, 4), 8);
        h.own_fields = true;
        h.add(kNb, xb.data());
        check_round_trips(&h, xq);
    }
    {
        IndexPtr n = make_nested(d, xb);
        check_round_trips(n.get(), xq);
    }
}

TEST(IORoundTrip, FactoryStrings) {
    size_t d = 32;
    std::vector<float> xb = data(kNb, d, 1), xq = data(kNq, d, 2);
    for (const char* s :
         {"TQmse4",
          "TQprod3",
          "TQ2.5c",
          "IVF8,TQmse4",
          "IVF8_HNSW8,TQprod3",
          "IDMap2,IVF8,TQ2.5",
          "PCA16,IVF8,TQmse4",
          "TQmse2c,RFlat",
          "IVF8,TQmse2,Refine(SQ8)",
          "HNSW8,TQmse4"}) {
        SCOPED_TRACE(s);
        IndexPtr idx(faiss_turbo::index_factory(d, s));
        idx->train(kNb, xb.data());
        if (dynamic_cast<faiss::IndexIDMap*>(idx.get())) {
            std::vector<idx_t> ids = some_ids(kNb);
            idx->add_with_ids(kNb, xb.data(), ids.data());
        } else {
            idx->add(kNb, xb.data());
        }
        check_round_trips(idx.get(), xq);
    }
}

/*************************************************************
 * Plain FAISS, unsupported containers
 *************************************************************/

TEST(IOPlain, PassesThroughUnchanged) {
    size_t d = 16;
    std::vector<float> xb = data(kNb, d, 1), xq = data(kNq, d, 2);
    faiss::IndexFlatL2 q(d);
    faiss::IndexIVFFlat ivf(&q, d, 4);
    ivf.train(kNb, xb.data());
    ivf.add(kNb, xb.data());
    faiss::VectorIOWriter fw;
    faiss::write_index(&ivf, &fw);
    // ours writes exactly FAISS's bytes, and each reads the other's
    Bytes ours = serialize(&ivf);
    EXPECT_TRUE(ours == fw.data);
    IndexPtr a = deserialize(fw.data);
    EXPECT_TRUE(dynamic_cast<faiss::IndexIVFFlat*>(a.get()));
    check_round_trips(&ivf, xq);
    std::string path = tmp_path("plain.faiss");
    faiss_turbo::write_index(&ivf, path.c_str());
    IndexPtr b(faiss::read_index(path.c_str()));
    EXPECT_EQ(b->ntotal, (idx_t)kNb);
    unlink(path.c_str());
    EXPECT_FALSE(faiss_turbo::index_contains_turbo(&ivf));
}

TEST(IOPlain, UnsupportedContainersNameTheProblem) {
    size_t d = 16;
    // a FAISS IVF whose coarse quantizer is ours: FAISS cannot write it
    IndexTurboQuant q(d, 8);
    faiss::IndexIVFFlat ivf(&q, d, 4);
    tqtest::throws_with([&] { serialize(&ivf); }, "cannot serialize");
    faiss::IndexReplicas rep((idx_t)d);
    rep.addIndex(new IndexTurboQuant(d, 4));
    faiss_turbo::set_owns_members(rep);
    EXPECT_THROW(serialize(&rep), faiss::FaissException);
    // a k_factor FAISS cannot search with is refused before anything is
    // written, rather than stored in a file that would not read back
    faiss::IndexRefineFlat refine(new IndexTurboQuant(d, 4));
    refine.own_fields = true;
    refine.k_factor = 0.5;
    EXPECT_THROW(serialize(&refine), faiss::FaissException);
}

/*************************************************************
 * Golden files
 *************************************************************/

/// labels agree except between results whose distances are tied within
/// tol (float rounding may reorder those on another machine)
void expect_same_answers(
        const golden::Expected& e, const golden::Expected& g, float tol) {
    for (size_t q = 0; q < golden::kNq; q++) {
        for (size_t j = 0; j < golden::kK; j++) {
            size_t i = q * golden::kK + j;
            EXPECT_NEAR(g.D[i], e.D[i], tol * (1 + std::fabs(e.D[i])));
            if (g.I[i] == e.I[i]) {
                continue;
            }
            // the recorded label must sit at a tied distance in g's list
            bool tied = false;
            for (size_t jj = 0; jj < golden::kK; jj++) {
                size_t ii = q * golden::kK + jj;
                tied |= g.I[ii] == e.I[i] &&
                        std::fabs(g.D[ii] - e.D[i]) <=
                                tol * (1 + std::fabs(e.D[i]));
            }
            EXPECT_TRUE(tied || j == golden::kK - 1)
                    << "query " << q << " rank " << j;
        }
    }
}

TEST(IOGolden, FilesReadAndAnswerAsRecorded) {
    for (const golden::Case& c : golden::cases()) {
        SCOPED_TRACE(c.name);
        std::string base = std::string(FAISS_TURBO_GOLDEN_DIR) + "/" + c.name;
        IndexPtr idx(faiss_turbo::read_index((base + ".ftq").c_str()));
        golden::Expected e = golden::read_expected(base + ".expected");
        golden::Expected g = golden::compute(*idx, c);
        EXPECT_EQ(g.cls, e.cls);
        EXPECT_EQ(g.d, e.d);
        EXPECT_EQ(g.ntotal, e.ntotal);
        ASSERT_EQ(g.code_size, e.code_size);
        // the codec read from the file encodes the known vectors to the
        // recorded codes, bit for bit
        EXPECT_TRUE(g.codes == e.codes);
        for (size_t i = 0; i < e.decoded.size(); i++) {
            EXPECT_NEAR(g.decoded[i], e.decoded[i], 1e-5) << i;
        }
        expect_same_answers(e, g, 1e-5);
    }
}

/*************************************************************
 * Corrupted, truncated, forged input
 *************************************************************/

/// a few serialized indexes that between them hold every kind of section
std::vector<std::pair<std::string, Bytes>> sample_files() {
    size_t d = 24;
    std::vector<float> xb = data(120, d, 1);
    std::vector<std::pair<std::string, Bytes>> res;
    IndexPtr a(
            make_tq(d,
                    2.5,
                    TQVariant::PROD,
                    faiss::METRIC_L2,
                    xb,
                    true,
                    RotationType::HADAMARD,
                    QJLType::HADAMARD));
    res.emplace_back("flat", serialize(a.get()));
    res.emplace_back("nested", serialize(make_nested(d, xb).get()));
    // the case that crashes FAISS 1.7.3's own reader when corrupted: an
    // HNSW coarse quantizer inside an IVF
    IndexPtr c(make_ivf(
            new faiss::IndexHNSWFlat(d, 4),
            d,
            6,
            3,
            TQVariant::MSE,
            faiss::METRIC_L2,
            true,
            false,
            xb));
    res.emplace_back("ivf_hnsw", serialize(c.get()));
    faiss::IndexPreTransform p(
            new faiss::RandomRotationMatrix(d, d), new IndexTurboQuant(d, 2));
    p.own_fields = true;
    p.train(120, xb.data());
    p.add(120, xb.data());
    faiss::IndexShards s((idx_t)d, false, true);
    s.add_shard(&p);
    faiss::IndexHNSW h(new IndexTurboQuant(d, 3), 4);
    h.own_fields = true;
    h.add(120, xb.data());
    s.add_shard(&h);
    res.emplace_back("shards", serialize(&s));
    return res;
}

TEST(IOCorruption, TruncationAtEverySectionBoundary) {
    for (const auto& [name, b] : sample_files()) {
        SCOPED_TRACE(name);
        for (const RawSection& s : sections_of(b)) {
            for (size_t cut :
                 {s.offset,
                  s.offset + 1,
                  s.offset + 31,
                  s.payload(),
                  s.payload() + s.size / 2,
                  s.end() - 1}) {
                if (cut < b.size()) {
                    expect_rejected(Bytes(b.begin(), b.begin() + cut));
                }
            }
        }
    }
}

TEST(IOCorruption, TruncationAtRandomOffsetsAndStreams) {
    std::mt19937 rng(5);
    for (const auto& [name, b] : sample_files()) {
        SCOPED_TRACE(name);
        for (int t = 0; t < 100; t++) {
            size_t cut = rng() % b.size();
            Bytes part(b.begin(), b.begin() + cut);
            expect_rejected(part);
            if (t % 10 == 0) {
                // through a stream of unknown length and through a FILE*
                faiss::VectorIOReader vr;
                vr.data = part;
                EXPECT_THROW(
                        IndexPtr(faiss_turbo::read_index(&vr)),
                        faiss::FaissException);
                FILE* f = tmpfile();
                fwrite(part.data(), 1, part.size(), f);
                rewind(f);
                EXPECT_THROW(
                        IndexPtr(faiss_turbo::read_index(f)),
                        faiss::FaissException);
                fclose(f);
            }
        }
    }
}

TEST(IOCorruption, SingleByteFlipsAnywhere) {
    std::mt19937 rng(7);
    for (const auto& [name, b] : sample_files()) {
        SCOPED_TRACE(name);
        // every byte of small files, a stride through larger ones
        size_t stride = std::max<size_t>(1, b.size() / 4000);
        for (size_t ofs = 0; ofs < b.size(); ofs += stride) {
            Bytes c = b;
            c[ofs] ^= (uint8_t)(1 + rng() % 255);
            bool thrown = false;
            try {
                IndexPtr idx = deserialize(c);
            } catch (const faiss::FaissException&) {
                thrown = true;
            }
            ASSERT_TRUE(thrown)
                    << "flip at offset " << ofs << " of " << b.size();
        }
    }
}

TEST(IOCorruption, ForgedSizesDoNotAllocate) {
    size_t d = 24;
    std::vector<float> xb = data(120, d, 1);
    Bytes b = serialize(make_nested(d, xb).get());
    auto secs = sections_of(b);
    // a section header claiming 512 GiB, with a valid header checksum
    for (size_t si : {size_t(1), size_t(4), secs.size() - 1}) {
        Bytes c = b;
        RawSection s = secs[si];
        s.size = uint64_t(1) << 39;
        uint64_t ph = 0;
        memcpy(&c[s.offset + 8], &s.size, 8);
        memcpy(&c[s.offset + 16], &ph, 8);
        uint64_t hh = faiss_turbo::io::xxhash64(&c[s.offset], 24);
        memcpy(&c[s.offset + 24], &hh, 8);
        expect_rejected(c, 1 << 20); // the size is known: fails at once
        // through a stream of unknown length: memory follows the bytes
        // actually there, in chunks
        g_max_alloc = 0;
        g_track = true;
        faiss::VectorIOReader vr;
        vr.data = c;
        EXPECT_THROW(
                IndexPtr(faiss_turbo::read_index(&vr)), faiss::FaissException);
        g_track = false;
        EXPECT_LE(g_max_alloc.load(), size_t(64) << 20);
    }
}

TEST(IOCorruption, ForgedFieldsWithValidChecksums) {
    size_t d = 24;
    std::vector<float> xb = data(120, d, 1);
    IndexPtr flat(make_tq(d, 3, TQVariant::PROD, faiss::METRIC_L2, xb));
    Bytes b = serialize(flat.get());
    auto secs = sections_of(b);
    const int64_t huge = int64_t(1) << 46;
    struct Forgery {
        const char* tag;
        size_t ofs;
        int64_t value;
    };
    // TQFL: i64 d, i64 ntotal...; TQPA: u64 d, ..., u64 code_size at 49,
    // u64 mean count at 57; TQCB: the centroid count at 20; TQRO: u64 d at 4
    for (Forgery f : std::vector<Forgery>{
                 {"TQFL", 0, huge},
                 {"TQFL", 8, huge},
                 {"TQFL", 8, -1},
                 {"TQFL", 8, 119},
                 {"TQPA", 0, huge},
                 {"TQPA", 0, 25},
                 {"TQPA", 49, 1000},
                 {"TQPA", 57, huge},
                 {"TQPA", 57, 24},
                 {"TQCB", 20, huge},
                 {"TQCB", 20, 2},
                 {"TQRO", 4, 23},
                 {"TQQJ", 4, huge},
         }) {
        SCOPED_TRACE(testing::Message() << f.tag << "@" << f.ofs);
        Bytes c = b;
        forge<int64_t>(c, find_section(secs, f.tag), f.ofs, f.value);
        expect_rejected(c, 1 << 20);
    }
    // search defaults out of range (TQFL: 25 bytes of index fields, the
    // centered byte, then i32 scan_mode, f32 rerank_factor)
    {
        Bytes c = b;
        forge<int32_t>(c, find_section(secs, "TQFL"), 26, 5);
        expect_rejected(c);
        for (float rf : {-1.0f, NAN, INFINITY}) {
            c = b;
            forge<float>(c, find_section(secs, "TQFL"), 30, rf);
            expect_rejected(c);
        }
    }
    // a permutation that is not one, a sign that is not +-1
    Bytes n = serialize(make_nested(d, xb).get());
    auto nsecs = sections_of(n);
    {
        Bytes c = n;
        forge<int64_t>(c, find_section(nsecs, "IDS_"), 0, 1007); // duplicate
        expect_rejected(c);
        c = n;
        forge<uint64_t>(c, find_section(nsecs, "ILSZ"), 0, 5000);
        expect_rejected(c);
        // IndexRefine with k_factor < 1 reads past its base results in
        // search (found by the fuzzer): REFF is the 25 bytes of index
        // fields, then k_factor
        for (float kf : {0.5f, 0.0f, -1.0f, NAN}) {
            c = n;
            forge<float>(c, find_section(nsecs, "REFF"), 25, kf);
            expect_rejected(c);
        }
        c = n;
        forge<float>(c, find_section(nsecs, "REFF"), 25, 1.0f);
        EXPECT_NO_THROW(deserialize(c));
    }
    {
        Bytes sh = sample_files()[3].second; // holds an IndexHNSW over ours
        Bytes c = sh;
        std::vector<RawSection> ssecs = sections_of(sh);
        const RawSection& hs = find_section(ssecs, "HNSG");
        forge<int64_t>(c, hs, 0, 7);
        expect_rejected(c);
        // FAISS's HNSW fields end efConstruction (40), efSearch (16),
        // upper_beam (1): a beam of 0 made the first search write through
        // an empty buffer
        const int32_t tail[3] = {40, 16, 1};
        size_t at = 0;
        for (size_t o = 0; o + sizeof(tail) <= hs.size; o++) {
            if (memcmp(&sh[hs.payload() + o], tail, sizeof(tail)) == 0) {
                at = o + 8;
            }
        }
        ASSERT_GT(at, 0u);
        for (int32_t beam : {0, -3}) {
            c = sh;
            forge<int32_t>(c, hs, at, beam);
            if (faiss_turbo::has_upper_beam<faiss::HNSW>::value) {
                expect_rejected(c);
            } else { // later FAISS reads the field and drops it
                EXPECT_NO_THROW(deserialize(c));
            }
        }
        c = sh;
        forge<int32_t>(c, hs, at, 2); // a legal beam reads
        EXPECT_NO_THROW(deserialize(c));
    }
    {
        // nprobe above nlist is legal (FAISS clamps it): it reads, and a
        // search does not allocate by it
        IndexPtr ivf(make_ivf(
                new faiss::IndexFlatL2(d),
                d,
                6,
                3,
                TQVariant::MSE,
                faiss::METRIC_L2,
                true,
                false,
                xb));
        Bytes c = serialize(ivf.get());
        // TQIV: the index fields (25 bytes), u64 nlist, u64 nprobe
        forge<uint64_t>(
                c, find_section(sections_of(c), "TQIV"), 33, uint64_t(1) << 40);
        IndexPtr back = deserialize(c);
        std::vector<float> xq = data(kNq, d, 2);
        g_max_alloc = 0;
        g_track = true;
        Result r = search(*back, xq);
        g_track = false;
        EXPECT_LE(g_max_alloc.load(), size_t(1) << 20);
        dynamic_cast<IndexIVFTurboQuant*>(back.get())->nprobe = 6;
        EXPECT_EQ(r.I, search(*back, xq).I);
        forge<uint64_t>(c, find_section(sections_of(c), "TQIV"), 25, 7);
        expect_rejected(c); // nlist != the list sizes section
    }
    IndexPtr h(
            make_tq(d,
                    3,
                    TQVariant::MSE,
                    faiss::METRIC_L2,
                    xb,
                    false,
                    RotationType::HADAMARD));
    Bytes hb = serialize(h.get());
    auto hsecs = sections_of(hb);
    const RawSection& ro = find_section(hsecs, "TQRO");
    uint32_t rounds;
    memcpy(&rounds, &hb[ro.payload() + 12], 4);
    Bytes c = hb;
    forge<int8_t>(c, ro, 16, 0); // first sign
    expect_rejected(c);
    c = hb;
    forge<uint32_t>(c, ro, 16 + rounds * d, 1000); // first perm entry
    expect_rejected(c);
}

TEST(IOCorruption, GarbageAndFraming) {
    std::mt19937 rng(3);
    for (int t = 0; t < 200; t++) {
        Bytes g(rng() % 300);
        for (auto& v : g) {
            v = rng();
        }
        if (t % 2 == 0 && g.size() >= 4) {
            memcpy(g.data(), "FTQH", 4); // our magic, garbage after it
        }
        expect_rejected(g);
    }
    expect_rejected(Bytes());
    size_t d = 24;
    std::vector<float> xb = data(50, d, 1);
    IndexPtr flat(make_tq(d, 4, TQVariant::MSE, faiss::METRIC_L2, xb));
    Bytes b = serialize(flat.get());
    // trailing bytes, a newer format version, a missing end marker
    Bytes c = b;
    c.push_back(0);
    expect_rejected(c);
    c = b;
    auto secs = sections_of(b);
    forge<uint32_t>(c, secs[0], 0, 2);
    try {
        deserialize(c);
        FAIL();
    } catch (const faiss::FaissException& e) {
        EXPECT_NE(
                std::string(e.what()).find("format version 2"),
                std::string::npos)
                << e.what();
    }
    c = Bytes(b.begin(), b.begin() + secs.back().offset);
    expect_rejected(c);
}

// a write that fails (here: search defaults it refuses) leaves the file
// as it was, and no temporary file beside it; search defaults a search
// takes (a large rerank_factor) are written
TEST(IOErrors, FailedWriteKeepsTheFile) {
    size_t d = 16;
    std::vector<float> xb = data(kNb, d, 1);
    IndexPtr flat(make_tq(d, 4, TQVariant::MSE, faiss::METRIC_L2, xb));
    auto* f = dynamic_cast<IndexTurboQuant*>(flat.get());
    const std::string path = tmp_path("keep.ftq");
    faiss_turbo::write_index(flat.get(), path.c_str());
    const Bytes before = serialize(flat.get());
    f->search_defaults.prescan = -1;
    EXPECT_THROW(
            faiss_turbo::write_index(flat.get(), path.c_str()),
            faiss::FaissException);
    IndexPtr back(faiss_turbo::read_index(path.c_str()));
    EXPECT_EQ(serialize(back.get()), before);
    const std::string tmp = path + ".tmp-" + std::to_string(getpid());
    EXPECT_NE(access(tmp.c_str(), F_OK), 0) << tmp << " left behind";
    f->search_defaults.prescan = 0;
    f->search_defaults.rerank_factor = 2e6f;
    faiss_turbo::write_index(flat.get(), path.c_str());
    back.reset(faiss_turbo::read_index(path.c_str()));
    EXPECT_EQ(
            dynamic_cast<IndexTurboQuant&>(*back).search_defaults.rerank_factor,
            2e6f);
    unlink(path.c_str());
}

TEST(IOErrors, FlagsAsFaissTakesThem) {
    // flags that do not apply to our files are ignored, as FAISS ignores
    // IO_FLAG_MMAP for a flat index; IO_FLAG_SKIP_IVF_DATA alone (lists
    // left out) would be a silently empty index: refused
    size_t d = 16;
    std::vector<float> xb = data(kNb, d, 1), xq = data(kNq, d, 2);
    IndexTurboQuant idx(d, 4);
    idx.add(kNb, xb.data());
    std::string path = tmp_path("flags.bin");
    faiss_turbo::write_index(&idx, path.c_str());
    for (int flags :
         {faiss::IO_FLAG_READ_ONLY,
          faiss::IO_FLAG_MMAP,
          faiss::IO_FLAG_ONDISK_SAME_DIR,
          faiss::IO_FLAG_MMAP | faiss::IO_FLAG_ONDISK_SAME_DIR}) {
        IndexPtr back(faiss_turbo::read_index(path.c_str(), flags));
        expect_same_index(&idx, back.get(), xq);
    }
    for (int flags : {faiss::IO_FLAG_SKIP_IVF_DATA, 0x100}) {
        EXPECT_THROW(
                faiss_turbo::read_index(path.c_str(), flags),
                faiss::FaissException);
    }
    remove(path.c_str());
}

TEST(IOErrors, MissingFile) {
    EXPECT_THROW(
            faiss_turbo::read_index("/nonexistent/dir/x.ftq"),
            faiss::FaissException);
    IndexTurboQuant idx(16, 4);
    EXPECT_THROW(
            faiss_turbo::write_index(&idx, "/nonexistent/dir/x.ftq"),
            faiss::FaissException);
}

} // namespace
