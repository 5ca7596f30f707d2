/**
 * The seed corpus of the fuzzer: one small valid file per kind of node
 * (written by the normal writer), stored without the 4-byte magic (see
 * fuzz_read_index.cpp).
 */
#pragma once

#include <cstdio>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <faiss/IndexFlat.h>
#include <faiss/IndexHNSW.h>
#include <faiss/IndexIDMap.h>
#include <faiss/IndexPreTransform.h>
#include <faiss/IndexRefine.h>
#include <faiss/IndexShards.h>
#include <faiss/VectorTransform.h>

#include <faiss_turbo/IndexIVFTurboQuant.h>
#include <faiss_turbo/IndexIVFTurboQuantFastScan.h>
#include <faiss_turbo/IndexTurboQuant.h>
#include <faiss_turbo/IndexTurboQuantFastScan.h>
#include <faiss_turbo/impl/random.h>
#include <faiss_turbo/index_io.h>

namespace fuzzseeds {

using namespace faiss_turbo;

constexpr size_t kD = 12, kN = 24;

inline std::vector<float> data() {
    SplitRNG rng(5);
    std::vector<float> x(kN * kD);
    for (auto& v : x) {
        v = (float)rng.next_gaussian();
    }
    return x;
}

inline IndexTurboQuant* tq(float bits, TQVariant v = TQVariant::MSE) {
    return new IndexTurboQuant(kD, bits, v);
}

inline IndexIVFTurboQuant* ivf(faiss::Index* q, TQVariant v, bool residual) {
    auto idx =
            new IndexIVFTurboQuant(q, kD, 3, 3, v, faiss::METRIC_L2, residual);
    idx->own_fields = true;
    return idx;
}

/// name -> an empty index (filled by write_seeds)
inline std::vector<std::pair<std::string, std::function<faiss::Index*()>>>
seed_indexes() {
    using faiss::IndexFlatL2;
    return {
            {"flat_mse4", [] { return tq(4); }},
            {"flat_prod2.5", [] { return tq(2.5, TQVariant::PROD); }},
            {"flat_hadamard_c",
             [] {
                 return new IndexTurboQuant(
                         kD,
                         3,
                         TQVariant::PROD,
                         faiss::METRIC_INNER_PRODUCT,
                         true,
                         false,
                         RotationType::HADAMARD,
                         QJLType::HADAMARD);
             }},
            {"flat_fastscan",
             [] {
                 return new IndexTurboQuantFastScan(
                         kD, 2, faiss::METRIC_L2, false, false);
             }},
            {"ivf_flat",
             [] { return ivf(new IndexFlatL2(kD), TQVariant::MSE, true); }},
            {"ivf_tq_quantizer",
             [] { return ivf(tq(8), TQVariant::PROD, false); }},
            {"ivf_fastscan",
             [] {
                 auto idx = new IndexIVFTurboQuantFastScan(
                         new IndexFlatL2(kD), kD, 3, 4);
                 idx->own_fields = true;
                 return idx;
             }},
            {"idmap2",
             [] {
                 auto m = new faiss::IndexIDMap2(tq(2));
                 m->own_fields = true;
                 return m;
             }},
            {"pretransform",
             [] {
                 auto p = new faiss::IndexPreTransform(
                         new faiss::RandomRotationMatrix(kD, kD), tq(3));
                 p->own_fields = true;
                 return p;
             }},
            {"refine",
             [] {
                 auto r = new faiss::IndexRefine(tq(2), new IndexFlatL2(kD));
                 r->own_fields = r->own_refine_index = true;
                 return r;
             }},
            {"refine_flat",
             [] {
                 auto r = new faiss::IndexRefineFlat(tq(1));
                 r->own_fields = true;
                 return r;
             }},
            {"shards",
             [] {
                 auto s = new faiss::IndexShards(
                         (faiss_turbo::idx_t)kD, false, true);
                 s->add_shard(tq(4));
                 s->add_shard(tq(4));
                 faiss_turbo::set_owns_members(*s);
                 return s;
             }},
            {"hnsw",
             [] {
                 auto h = new faiss::IndexHNSW(tq(4), 4);
                 h->own_fields = true;
                 return h;
             }},
    };
}

/// writes the seeds, returns how many
inline int write_seeds(const std::string& dir) {
    std::vector<float> x = data();
    int n = 0;
    for (auto& [name, make] : seed_indexes()) {
        std::unique_ptr<faiss::Index> idx(make());
        idx->train(kN, x.data());
        if (auto m = dynamic_cast<faiss::IndexIDMap*>(idx.get())) {
            std::vector<faiss_turbo::idx_t> ids(kN);
            for (size_t i = 0; i < kN; i++) {
                ids[i] = 100 + 3 * i;
            }
            m->add_with_ids(kN, x.data(), ids.data());
        } else {
            idx->add(kN, x.data());
        }
        std::vector<uint8_t> b = serialize_index(idx.get());
        FILE* f = fopen((dir + "/seed_" + name).c_str(), "wb");
        if (!f) {
            return n;
        }
        fwrite(b.data() + 4, 1, b.size() - 4, f);
        fclose(f);
        n++;
    }
    return n;
}

} // namespace fuzzseeds
