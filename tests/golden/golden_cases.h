/**
 * The golden files of tests/golden (see README.md there): how each index is
 * built, and what is recorded of it (codes of known vectors, their
 * decoding, search results). Shared by make_golden (writes) and test_io
 * (only reads). All inputs come from faiss_turbo::SplitRNG, which gives the
 * same numbers on every machine.
 */
#pragma once

#include <cxxabi.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <functional>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include <faiss/IndexFlat.h>
#include <faiss/impl/FaissAssert.h>

#include <faiss_turbo/IndexIVFTurboQuant.h>
#include <faiss_turbo/IndexIVFTurboQuantFastScan.h>
#include <faiss_turbo/IndexTurboQuant.h>
#include <faiss_turbo/IndexTurboQuantFastScan.h>
#include <faiss_turbo/impl/random.h>

namespace golden {

using faiss_turbo::idx_t;

constexpr size_t kNq = 8;   ///< queries
constexpr size_t kK = 5;    ///< neighbors per query
constexpr size_t kNenc = 6; ///< database vectors re-encoded
constexpr uint64_t kQuerySeed = 777;

/// n x d standard normal floats from SplitRNG
inline std::vector<float> gaussian(size_t n, size_t d, uint64_t seed) {
    faiss_turbo::SplitRNG rng(seed);
    std::vector<float> x(n * d);
    for (auto& v : x) {
        v = (float)rng.next_gaussian();
    }
    return x;
}

struct Case {
    std::string name; ///< file names: <name>.ftq, <name>.expected
    size_t d;
    size_t nb;
    uint64_t data_seed;
    /// an index built and filled from xb (nb x d)
    std::function<faiss::Index*(const float* xb)> build;
};

inline std::vector<Case> cases() {
    using namespace faiss_turbo;
    std::vector<Case> res;
    res.push_back({"tq_mse4_hadamard", 96, 100, 11, [](const float* xb) {
                       auto idx = new IndexTurboQuant(
                               96,
                               4,
                               TQVariant::MSE,
                               faiss::METRIC_L2,
                               false,
                               true,
                               RotationType::HADAMARD);
                       idx->add(100, xb);
                       return idx;
                   }});
    res.push_back(
            {"tq_prod3_ip", 48, 100, 12, [](const float* xb) {
                 auto idx = new IndexTurboQuant(
                         48, 3, TQVariant::PROD, faiss::METRIC_INNER_PRODUCT);
                 idx->add(100, xb);
                 return idx;
             }});
    res.push_back({"tq2.5_centered", 40, 100, 13, [](const float* xb) {
                       auto idx = new IndexTurboQuant(
                               40, 2.5, TQVariant::MSE, faiss::METRIC_L2, true);
                       idx->train(100, xb);
                       idx->add(100, xb);
                       return idx;
                   }});
    res.push_back({"ivf8_tq4", 32, 200, 14, [](const float* xb) {
                       auto idx = new IndexIVFTurboQuant(
                               new faiss::IndexFlatL2(32), 32, 8, 4);
                       idx->own_fields = true;
                       idx->nprobe = 3;
                       idx->train(200, xb);
                       idx->add(200, xb);
                       return idx;
                   }});
    res.push_back({"fs_mse2_ip", 40, 100, 15, [](const float* xb) {
                       auto idx = new IndexTurboQuantFastScan(
                               40, 2, faiss::METRIC_INNER_PRODUCT);
                       idx->add(100, xb);
                       return idx;
                   }});
    res.push_back({"ivf8_fs4", 32, 200, 16, [](const float* xb) {
                       auto idx = new IndexIVFTurboQuantFastScan(
                               new faiss::IndexFlatL2(32), 32, 8, 4);
                       idx->own_fields = true;
                       idx->nprobe = 3;
                       idx->train(200, xb);
                       idx->add(200, xb);
                       return idx;
                   }});
    return res;
}

/// what a golden file must answer
struct Expected {
    std::string cls;
    size_t d = 0, ntotal = 0, code_size = 0;
    std::vector<uint8_t> codes; ///< sa_encode of the first kNenc vectors
    std::vector<float> decoded; ///< sa_decode of those codes
    std::vector<float> D;       ///< kNq x kK
    std::vector<idx_t> I;
};

inline Expected compute(const faiss::Index& idx, const Case& c) {
    Expected e;
    int status = 0;
    char* dem = abi::__cxa_demangle(typeid(idx).name(), 0, 0, &status);
    e.cls = status == 0 ? dem : typeid(idx).name();
    free(dem);
    e.d = idx.d;
    e.ntotal = idx.ntotal;
    e.code_size = idx.sa_code_size();
    std::vector<float> xb = gaussian(c.nb, c.d, c.data_seed);
    e.codes.resize(kNenc * e.code_size);
    idx.sa_encode(kNenc, xb.data(), e.codes.data());
    e.decoded.resize(kNenc * c.d);
    idx.sa_decode(kNenc, e.codes.data(), e.decoded.data());
    std::vector<float> xq = gaussian(kNq, c.d, kQuerySeed);
    e.D.resize(kNq * kK);
    e.I.resize(kNq * kK);
    // the flat index's reference scan: what is recorded is the file's
    // content, not the choice of a default search mode
    faiss_turbo::SearchParametersTurboQuant exact;
    exact.scan_mode = faiss_turbo::TQ_SCAN_EXACT;
    faiss_turbo::SearchParametersIVFTurboQuant ivf_exact;
    ivf_exact.scan_mode = faiss_turbo::TQ_SCAN_EXACT;
    const faiss::SearchParameters* params = nullptr;
    auto ivf = dynamic_cast<const faiss_turbo::IndexIVFTurboQuant*>(&idx);
    if (dynamic_cast<const faiss_turbo::IndexTurboQuant*>(&idx) ||
        dynamic_cast<const faiss_turbo::IndexTurboQuantFastScan*>(&idx)) {
        params = &exact;
    } else if (ivf) {
        ivf_exact.nprobe = ivf->nprobe;
        params = &ivf_exact;
    }
    idx.search(kNq, xq.data(), kK, e.D.data(), e.I.data(), params);
    return e;
}

inline void write_expected(const Expected& e, const std::string& path) {
    FILE* f = fopen(path.c_str(), "w");
    FAISS_THROW_IF_NOT_FMT(f, "cannot write %s", path.c_str());
    fprintf(f, "# faiss-turbo golden answers (tests/golden/README.md)\n");
    fprintf(f,
            "class %s\nd %zd\nntotal %zd\ncode_size %zd\n",
            e.cls.c_str(),
            e.d,
            e.ntotal,
            e.code_size);
    fprintf(f, "codes %zd\n", kNenc);
    for (size_t i = 0; i < kNenc; i++) {
        for (size_t j = 0; j < e.code_size; j++) {
            fprintf(f, "%02x", e.codes[i * e.code_size + j]);
        }
        fprintf(f, "\n");
    }
    fprintf(f, "decoded %zd\n", kNenc);
    for (size_t i = 0; i < kNenc * e.d; i++) {
        fprintf(f, "%.9g%c", e.decoded[i], (i + 1) % e.d ? ' ' : '\n');
    }
    fprintf(f, "search %zd %zd\n", kNq, kK);
    for (size_t i = 0; i < kNq * kK; i++) {
        fprintf(f,
                "%ld %.9g%c",
                (long)e.I[i],
                e.D[i],
                (i + 1) % kK ? ' ' : '\n');
    }
    fclose(f);
}

inline void expect_word(std::istream& in, const char* w) {
    std::string s;
    in >> s;
    FAISS_THROW_IF_NOT_FMT(
            s == w, "golden: expected '%s', got '%s'", w, s.c_str());
}

inline Expected read_expected(const std::string& path) {
    std::ifstream in(path);
    FAISS_THROW_IF_NOT_FMT(in.good(), "cannot read %s", path.c_str());
    std::string comment;
    std::getline(in, comment);
    Expected e;
    size_t n, k;
    expect_word(in, "class");
    in >> e.cls;
    expect_word(in, "d");
    in >> e.d;
    expect_word(in, "ntotal");
    in >> e.ntotal;
    expect_word(in, "code_size");
    in >> e.code_size;
    expect_word(in, "codes");
    in >> n;
    FAISS_THROW_IF_NOT(n == kNenc);
    for (size_t i = 0; i < kNenc; i++) {
        std::string hex;
        in >> hex;
        FAISS_THROW_IF_NOT(hex.size() == 2 * e.code_size);
        for (size_t j = 0; j < e.code_size; j++) {
            e.codes.push_back(std::stoul(hex.substr(2 * j, 2), nullptr, 16));
        }
    }
    expect_word(in, "decoded");
    in >> n;
    e.decoded.resize(kNenc * e.d);
    for (auto& v : e.decoded) {
        in >> v;
    }
    expect_word(in, "search");
    in >> n >> k;
    FAISS_THROW_IF_NOT(n == kNq && k == kK);
    e.D.resize(kNq * kK);
    e.I.resize(kNq * kK);
    for (size_t i = 0; i < kNq * kK; i++) {
        long label;
        in >> label >> e.D[i];
        e.I[i] = label;
    }
    FAISS_THROW_IF_NOT_FMT(!in.fail(), "golden: %s is malformed", path.c_str());
    return e;
}

} // namespace golden
