/**
 * Nodes of FAISS containers that may hold our indexes: IndexIDMap(2),
 * IndexPreTransform, IndexRefine(Flat), IndexShards, IndexHNSW over our
 * codes. Each is written field by field here (FAISS's writer would stop at
 * the TurboQuant index inside); the FAISS-owned parts (transforms, HNSW
 * graph, plain sub-indexes) go through impl/io_faiss_parts.h.
 */
#include <cmath>
#include <memory>
#include <typeinfo>

#include <faiss/IndexFlat.h>
#include <faiss/IndexHNSW.h>
#include <faiss/IndexIDMap.h>
#include <faiss/IndexPreTransform.h>
#include <faiss/IndexRefine.h>
#include <faiss/IndexShards.h>

#include <faiss_turbo/IndexHNSWTurboQuant.h>
#include <faiss_turbo/IndexTurboQuant.h>
#include <faiss_turbo/IndexTurboQuantFastScan.h>
#include <faiss_turbo/impl/compat.h>
#include <faiss_turbo/impl/io_faiss_parts.h>
#include <faiss_turbo/impl/io_nodes.h>

namespace faiss_turbo {
namespace io {

namespace {

constexpr uint32_t kMaxChain = 64;
/// a threaded IndexShards starts one thread per shard
constexpr uint32_t kMaxShards = 1024;

std::unique_ptr<faiss::Index> read_child(
        SectionReader& r,
        int depth,
        const IndexFields& f,
        const Section& head,
        const char* role) {
    std::unique_ptr<faiss::Index> child(read_node(r, depth + 1));
    check_index_fields(f, *child, head.name() + " " + role);
    return child;
}

PayloadWriter head_of(const faiss::Index& idx) {
    PayloadWriter pw;
    put_index_fields(pw, idx);
    return pw;
}

/*************************************************************
 * IndexIDMap, IndexIDMap2: head {fields}, IDS_ (ntotal x i64), child
 *************************************************************/

void write_idmap(const faiss::IndexIDMap& idx, SectionWriter& w, int depth) {
    bool two = typeid(idx) == typeid(faiss::IndexIDMap2);
    FAISS_THROW_IF_NOT_MSG(
            idx.id_map.size() == (size_t)idx.ntotal,
            "faiss-turbo write: IndexIDMap: id_map size != ntotal");
    w.write(two ? kTagIDMap2 : kTagIDMap, head_of(idx));
    w.write(kTagIds, idx.id_map.data(), idx.id_map.size() * sizeof(int64_t));
    write_node(idx.index, w, depth + 1);
}

faiss::Index* read_idmap(const Section& head, SectionReader& r, int depth) {
    PayloadReader pr = head.reader();
    IndexFields f = get_index_fields(pr);
    pr.expect_end();
    Section ids = r.next(kTagIds, "the id map");
    FAISS_THROW_IF_NOT_FMT(
            ids.data.size() == (uint64_t)f.ntotal * sizeof(int64_t),
            "faiss-turbo read: %s holds %zd bytes for %ld ids",
            ids.name().c_str(),
            ids.data.size(),
            (long)f.ntotal);
    std::unique_ptr<faiss::IndexIDMap> out(
            head.tag == kTagIDMap2 ? new faiss::IndexIDMap2()
                                   : new faiss::IndexIDMap());
    out->index = read_child(r, depth, f, head, "sub-index").release();
    out->own_fields = true;
    apply_index_fields(f, *out);
    out->id_map.resize(f.ntotal);
    if (f.ntotal > 0) {
        memcpy(out->id_map.data(), ids.data.data(), ids.data.size());
    }
    if (auto two = dynamic_cast<faiss::IndexIDMap2*>(out.get())) {
        two->construct_rev_map();
        two->check_consistency(); // throws on duplicate ids
    }
    return out.release();
}

/*************************************************************
 * IndexPreTransform: head {fields, nchain}, nchain x VTRF, child
 *************************************************************/

void write_pretransform(
        const faiss::IndexPreTransform& idx, SectionWriter& w, int depth) {
    PayloadWriter head = head_of(idx);
    head.put<uint32_t>(idx.chain.size());
    w.write(kTagPreTransform, head);
    for (const faiss::VectorTransform* vt : idx.chain) {
        write_vector_transform(vt, w);
    }
    write_node(idx.index, w, depth + 1);
}

faiss::Index*
read_pretransform(const Section& head, SectionReader& r, int depth) {
    PayloadReader pr = head.reader();
    IndexFields f = get_index_fields(pr);
    uint32_t nchain = pr.get<uint32_t>();
    pr.expect_end();
    FAISS_THROW_IF_NOT_FMT(
            nchain <= kMaxChain,
            "faiss-turbo read: %s: %u transforms (at most %u)",
            head.name().c_str(),
            nchain,
            kMaxChain);
    auto out = std::make_unique<faiss::IndexPreTransform>();
    out->own_fields = true; // from here on it deletes what it holds
    int64_t dim = f.d;
    for (uint32_t i = 0; i < nchain; i++) {
        Section s = r.next(kTagVectorTransform, "a vector transform");
        out->chain.push_back(read_vector_transform(s));
        FAISS_THROW_IF_NOT_FMT(
                out->chain.back()->d_in == dim,
                "faiss-turbo read: %s: input dimension %d, expected %ld",
                s.name().c_str(),
                out->chain.back()->d_in,
                (long)dim);
        dim = out->chain.back()->d_out;
    }
    std::unique_ptr<faiss::Index> child(read_node(r, depth + 1));
    FAISS_THROW_IF_NOT_FMT(
            child->d == dim && child->ntotal == f.ntotal,
            "faiss-turbo read: %s: sub-index d=%ld ntotal=%ld, expected "
            "d=%ld ntotal=%ld",
            head.name().c_str(),
            (long)child->d,
            (long)child->ntotal,
            (long)dim,
            (long)f.ntotal);
    out->index = child.release();
    apply_index_fields(f, *out);
    return out.release();
}

/*************************************************************
 * IndexRefine(Flat): head {fields, k_factor}, base node, refine node
 *************************************************************/

void write_refine(const faiss::IndexRefine& idx, SectionWriter& w, int depth) {
    bool flat = typeid(idx) == typeid(faiss::IndexRefineFlat);
    // the reader refuses what FAISS cannot search: refuse it here too, so
    // that no file is written that cannot be read back
    FAISS_THROW_IF_NOT_FMT(
            std::isfinite(idx.k_factor) && idx.k_factor >= 1 &&
                    idx.k_factor <= 1e6,
            "faiss-turbo write: IndexRefine k_factor %g is outside [1, 1e6]",
            idx.k_factor);
    PayloadWriter head = head_of(idx);
    head.put<float>(idx.k_factor);
    w.write(flat ? kTagRefineFlat : kTagRefine, head);
    write_node(idx.base_index, w, depth + 1);
    write_node(idx.refine_index, w, depth + 1);
}

faiss::Index* read_refine(const Section& head, SectionReader& r, int depth) {
    PayloadReader pr = head.reader();
    IndexFields f = get_index_fields(pr);
    float k_factor = pr.get<float>();
    pr.expect_end();
    // k_factor < 1 makes IndexRefine::search read past its base results
    // (FAISS 1.7.3 does not check it; later versions throw)
    FAISS_THROW_IF_NOT_FMT(
            std::isfinite(k_factor) && k_factor >= 1 && k_factor <= 1e6,
            "faiss-turbo read: %s: k_factor %g is outside [1, 1e6]",
            head.name().c_str(),
            k_factor);
    bool flat = head.tag == kTagRefineFlat;
    std::unique_ptr<faiss::IndexRefine> out(
            flat ? new faiss::IndexRefineFlat() : new faiss::IndexRefine());
    out->own_fields = out->own_refine_index = true;
    out->base_index = read_child(r, depth, f, head, "base index").release();
    out->refine_index = read_child(r, depth, f, head, "refine index").release();
    FAISS_THROW_IF_NOT_FMT(
            !flat || dynamic_cast<faiss::IndexFlat*>(out->refine_index),
            "faiss-turbo read: %s: IndexRefineFlat needs an IndexFlat "
            "refinement index",
            head.name().c_str());
    out->k_factor = k_factor;
    apply_index_fields(f, *out);
    return out.release();
}

/*************************************************************
 * IndexShards: head {fields, successive_ids, threaded, n}, n nodes
 *************************************************************/

/// isThreaded_ is protected; a member pointer formed in a derived class
/// reads it without copying the shards
struct ShardsAccess : faiss::IndexShards {
    static bool threaded(const faiss::IndexShards& s) {
        return s.*(&ShardsAccess::isThreaded_);
    }
};

void write_shards(const faiss::IndexShards& idx, SectionWriter& w, int depth) {
    PayloadWriter head = head_of(idx);
    head.put<uint8_t>(idx.successive_ids);
    head.put<uint8_t>(ShardsAccess::threaded(idx));
    head.put<uint32_t>(idx.count());
    w.write(kTagShards, head);
    for (int i = 0; i < idx.count(); i++) {
        write_node(idx.at(i), w, depth + 1);
    }
}

faiss::Index* read_shards(const Section& head, SectionReader& r, int depth) {
    PayloadReader pr = head.reader();
    IndexFields f = get_index_fields(pr);
    bool successive = get_bool(pr);
    bool threaded = get_bool(pr);
    uint32_t n = pr.get<uint32_t>();
    pr.expect_end();
    FAISS_THROW_IF_NOT_FMT(
            n <= kMaxShards,
            "faiss-turbo read: %s: %u shards (at most %u)",
            head.name().c_str(),
            n,
            kMaxShards);
    auto out = std::make_unique<faiss::IndexShards>(f.d, threaded, successive);
    set_owns_members(*out);
    for (uint32_t i = 0; i < n; i++) {
        std::unique_ptr<faiss::Index> shard(read_node(r, depth + 1));
        FAISS_THROW_IF_NOT_FMT(
                shard->d == f.d && shard->metric_type == f.metric,
                "faiss-turbo read: %s: shard %u has d=%ld metric %d",
                head.name().c_str(),
                i,
                (long)shard->d,
                (int)shard->metric_type);
        out->add_shard(shard.get());
        shard.release();
    }
    FAISS_THROW_IF_NOT_FMT(
            out->ntotal == f.ntotal,
            "faiss-turbo read: %s: the shards hold %ld vectors, not %ld",
            head.name().c_str(),
            (long)out->ntotal,
            (long)f.ntotal);
    apply_index_fields(f, *out);
    return out.release();
}

/*************************************************************
 * IndexHNSW over any storage: head {fields}, HNSG graph, storage node
 *************************************************************/

/// one of our flat indexes (rows or fast-scan blocks)
bool is_turbo_storage(const faiss::Index* storage) {
    return dynamic_cast<const IndexTurboQuant*>(storage) ||
           dynamic_cast<const IndexTurboQuantFastScan*>(storage);
}

void write_hnsw(const faiss::IndexHNSW& idx, SectionWriter& w, int depth) {
    w.write(kTagHNSW, head_of(idx));
    write_hnsw_graph(idx, w);
    write_node(idx.storage, w, depth + 1);
}

faiss::Index* read_hnsw(const Section& head, SectionReader& r, int depth) {
    PayloadReader pr = head.reader();
    IndexFields f = get_index_fields(pr);
    pr.expect_end();
    faiss::HNSW graph;
    read_hnsw_graph(r.next(kTagHNSWGraph, "the HNSW graph"), f.ntotal, graph);
    std::unique_ptr<faiss::Index> storage =
            read_child(r, depth, f, head, "storage");
    // over our storage: the class that checks queries before FAISS's
    // graph search (IndexHNSWTurboQuant.h)
    std::unique_ptr<faiss::IndexHNSW> out;
    if (is_turbo_storage(storage.get())) {
        out = std::make_unique<IndexHNSWTurboQuant>();
    } else {
        out = std::make_unique<faiss::IndexHNSW>();
    }
    out->hnsw = std::move(graph);
    out->storage = storage.release();
    out->own_fields = true;
    apply_index_fields(f, *out);
    return out.release();
}

} // namespace

bool write_container_node(
        const faiss::Index* idx, SectionWriter& w, int depth) {
    const std::type_info& t = typeid(*idx);
    if (t == typeid(faiss::IndexIDMap) || t == typeid(faiss::IndexIDMap2)) {
        write_idmap(*static_cast<const faiss::IndexIDMap*>(idx), w, depth);
    } else if (t == typeid(faiss::IndexPreTransform)) {
        write_pretransform(
                *static_cast<const faiss::IndexPreTransform*>(idx), w, depth);
    } else if (
            t == typeid(faiss::IndexRefine) ||
            t == typeid(faiss::IndexRefineFlat)) {
        write_refine(*static_cast<const faiss::IndexRefine*>(idx), w, depth);
    } else if (t == typeid(faiss::IndexShards)) {
        write_shards(*static_cast<const faiss::IndexShards*>(idx), w, depth);
    } else if (
            t == typeid(faiss::IndexHNSW) || t == typeid(IndexHNSWTurboQuant)) {
        write_hnsw(*static_cast<const faiss::IndexHNSW*>(idx), w, depth);
    } else {
        return false;
    }
    return true;
}

faiss::Index*
read_container_node(const Section& head, SectionReader& r, int depth) {
    switch (head.tag) {
        case kTagIDMap:
        case kTagIDMap2:
            return read_idmap(head, r, depth);
        case kTagPreTransform:
            return read_pretransform(head, r, depth);
        case kTagRefine:
        case kTagRefineFlat:
            return read_refine(head, r, depth);
        case kTagShards:
            return read_shards(head, r, depth);
        case kTagHNSW:
            return read_hnsw(head, r, depth);
        default:
            return nullptr;
    }
}

} // namespace io
} // namespace faiss_turbo
