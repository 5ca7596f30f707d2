#include <faiss_turbo/impl/io_faiss_parts.h>

#include <cmath>
#include <memory>

#include <faiss/IndexFlat.h>
#include <faiss/index_io.h>

#include <faiss_turbo/impl/compat.h>
#include <faiss_turbo/impl/io_nodes.h>

namespace faiss_turbo {
namespace io {

namespace {

/// FAISS's bytes for an object, through a VectorIOWriter
template <class WriteFn> std::vector<uint8_t> faiss_bytes(WriteFn fn) {
    faiss::VectorIOWriter vw;
    fn(&vw);
    return std::move(vw.data);
}

#ifndef FAISS_TURBO_IO_FUZZING
/// the reader over the rest of a payload, for FAISS
MemoryIOReader rest_reader(const PayloadReader& pr) {
    MemoryIOReader mr(pr.p + pr.pos, pr.remaining());
    mr.name = pr.what;
    return mr;
}

void check_consumed(const MemoryIOReader& mr, const std::string& what) {
    FAISS_THROW_IF_NOT_FMT(
            mr.pos == mr.size,
            "faiss-turbo read: %s: FAISS's reader left %zd bytes unread",
            what.c_str(),
            mr.size - mr.pos);
}
#endif

#ifdef FAISS_TURBO_IO_FUZZING
/// stub for a FAISS sub-index: an IndexFlat of the recorded shape (zeros)
faiss::Index* stub_index(const IndexFields& f) {
    FAISS_THROW_IF_NOT_MSG(
            f.ntotal <= (int64_t(1) << 22) / f.d, "fuzz stub: too large");
    auto idx = std::make_unique<faiss::IndexFlat>(f.d, f.metric);
    std::vector<float> zeros(f.ntotal * f.d);
    idx->add(f.ntotal, zeros.data());
    idx->is_trained = f.is_trained;
    idx->metric_arg = f.metric_arg;
    return idx.release();
}

/// stub for an HNSW graph: a ring on level 0, so that searches run
faiss::HNSW stub_graph(int64_t n) {
    FAISS_THROW_IF_NOT_MSG(n <= (1 << 16), "fuzz stub: too large");
    faiss::HNSW h(4);
    size_t nb = h.cum_nneighbor_per_level[1];
    for (int64_t i = 0; i < n; i++) {
        h.levels.push_back(1);
        h.offsets.push_back(h.offsets.back() + nb);
        h.neighbors.resize(h.offsets.back(), -1);
        h.neighbors[h.offsets[i]] = (i + 1) % n;
    }
    h.entry_point = n > 0 ? 0 : -1;
    h.max_level = n > 0 ? 0 : -1;
    return h;
}
#endif

} // namespace

/*************************************************************
 * Sub-index
 *************************************************************/

void write_faiss_index(const faiss::Index* idx, SectionWriter& w) {
    PayloadWriter pw;
    put_index_fields(pw, *idx);
    std::vector<uint8_t> fb = faiss_bytes(
            [&](faiss::IOWriter* vw) { faiss::write_index(idx, vw); });
    w.write(kTagFaissIndex,
            {{pw.buf.data(), pw.buf.size()}, {fb.data(), fb.size()}});
}

faiss::Index* read_faiss_index(const Section& s) {
    PayloadReader pr = s.reader();
    IndexFields f = get_index_fields(pr);
#ifdef FAISS_TURBO_IO_FUZZING
    return stub_index(f);
#else
    MemoryIOReader mr = rest_reader(pr);
    std::unique_ptr<faiss::Index> idx(faiss::read_index(&mr));
    check_consumed(mr, s.name());
    check_index_fields(f, *idx, s.name());
    return idx.release();
#endif
}

/*************************************************************
 * VectorTransform
 *************************************************************/

void write_vector_transform(
        const faiss::VectorTransform* vt, SectionWriter& w) {
    PayloadWriter pw;
    pw.put<int64_t>(vt->d_in);
    pw.put<int64_t>(vt->d_out);
    pw.put<uint8_t>(vt->is_trained);
    std::vector<uint8_t> fb = faiss_bytes(
            [&](faiss::IOWriter* vw) { faiss::write_VectorTransform(vt, vw); });
    w.write(kTagVectorTransform,
            {{pw.buf.data(), pw.buf.size()}, {fb.data(), fb.size()}});
}

faiss::VectorTransform* read_vector_transform(const Section& s) {
    PayloadReader pr = s.reader();
    int64_t d_in = pr.get<int64_t>();
    int64_t d_out = pr.get<int64_t>();
    bool trained = get_bool(pr);
    FAISS_THROW_IF_NOT_FMT(
            d_in >= 1 && d_in <= kMaxDim && d_out >= 1 && d_out <= kMaxDim,
            "faiss-turbo read: %s: bad dimensions %ld -> %ld",
            s.name().c_str(),
            (long)d_in,
            (long)d_out);
#ifdef FAISS_TURBO_IO_FUZZING
    FAISS_THROW_IF_NOT_MSG(d_out <= (1 << 16), "fuzz stub: too large");
    auto vt = new faiss::RemapDimensionsTransform(d_in, d_out, true);
    vt->is_trained = trained;
    return vt;
#else
    MemoryIOReader mr = rest_reader(pr);
    std::unique_ptr<faiss::VectorTransform> vt(
            faiss::read_VectorTransform(&mr));
    check_consumed(mr, s.name());
    FAISS_THROW_IF_NOT_FMT(
            vt->d_in == d_in && vt->d_out == d_out && vt->is_trained == trained,
            "faiss-turbo read: %s: the transform does not match its "
            "recorded shape",
            s.name().c_str());
    return vt.release();
#endif
}

/*************************************************************
 * HNSW graph
 *************************************************************/

void write_hnsw_graph(const faiss::IndexHNSW& idx, SectionWriter& w) {
    FAISS_THROW_IF_NOT_MSG(
            !reconstructs_from_neighbors(idx),
            "faiss-turbo write: IndexHNSW with reconstruct_from_neighbors "
            "is not supported");
    // FAISS serializes the graph only inside its own HNSW classes: a shell
    // IndexHNSWFlat with an empty storage carries it
    faiss::IndexHNSWFlat shell;
    shell.d = idx.d;
    shell.metric_type = idx.metric_type;
    shell.hnsw = idx.hnsw;
    shell.storage = new faiss::IndexFlat(idx.d, idx.metric_type);
    shell.own_fields = true;
    PayloadWriter pw;
    pw.put<int64_t>(idx.ntotal);
    std::vector<uint8_t> fb = faiss_bytes(
            [&](faiss::IOWriter* vw) { faiss::write_index(&shell, vw); });
    w.write(kTagHNSWGraph,
            {{pw.buf.data(), pw.buf.size()}, {fb.data(), fb.size()}});
}

void read_hnsw_graph(const Section& s, int64_t ntotal, faiss::HNSW& out) {
    PayloadReader pr = s.reader();
    int64_t n = pr.get<int64_t>();
    FAISS_THROW_IF_NOT_FMT(
            n == ntotal,
            "faiss-turbo read: %s: graph of %ld nodes for %ld vectors",
            s.name().c_str(),
            (long)n,
            (long)ntotal);
#ifdef FAISS_TURBO_IO_FUZZING
    out = stub_graph(ntotal);
#else
    MemoryIOReader mr = rest_reader(pr);
    std::unique_ptr<faiss::Index> shell(faiss::read_index(&mr));
    check_consumed(mr, s.name());
    auto h = dynamic_cast<faiss::IndexHNSWFlat*>(shell.get());
    FAISS_THROW_IF_NOT_FMT(
            h, "faiss-turbo read: %s: not an HNSW graph", s.name().c_str());
    out = std::move(h->hnsw);
#endif
    check_hnsw_graph(out, ntotal);
}

namespace {

void check_hnsw_levels(const faiss::HNSW& h, int64_t ntotal) {
    const auto& cum = h.cum_nneighbor_per_level;
    FAISS_THROW_IF_NOT_MSG(
            !cum.empty() && cum[0] == 0,
            "faiss-turbo read: HNSW graph: bad neighbor counts per level");
    for (size_t l = 1; l < cum.size(); l++) {
        FAISS_THROW_IF_NOT_MSG(
                cum[l] >= cum[l - 1] && cum[l] - cum[l - 1] <= (1 << 16),
                "faiss-turbo read: HNSW graph: bad neighbor counts per level");
    }
    FAISS_THROW_IF_NOT_MSG(
            h.levels.size() == (size_t)ntotal &&
                    h.offsets.size() == (size_t)ntotal + 1 &&
                    h.offsets[0] == 0 &&
                    h.offsets[ntotal] == h.neighbors.size(),
            "faiss-turbo read: HNSW graph: table sizes do not match ntotal");
    for (int64_t i = 0; i < ntotal; i++) {
        int lv = h.levels[i];
        FAISS_THROW_IF_NOT_FMT(
                lv >= 1 && (size_t)lv < cum.size() &&
                        h.offsets[i + 1] >= h.offsets[i] &&
                        h.offsets[i + 1] - h.offsets[i] == (size_t)cum[lv],
                "faiss-turbo read: HNSW graph: bad level or offsets at "
                "node %ld",
                (long)i);
    }
}

void check_hnsw_links(const faiss::HNSW& h, int64_t ntotal) {
    const auto& cum = h.cum_nneighbor_per_level;
    for (int64_t i = 0; i < ntotal; i++) {
        for (int l = 0; l < h.levels[i]; l++) {
            for (size_t j = h.offsets[i] + cum[l];
                 j < h.offsets[i] + cum[l + 1];
                 j++) {
                int v = h.neighbors[j];
                // a neighbor at level l must itself live at level l
                FAISS_THROW_IF_NOT_FMT(
                        v >= -1 && v < ntotal && (v < 0 || h.levels[v] > l),
                        "faiss-turbo read: HNSW graph: bad link %d at node "
                        "%ld level %d",
                        v,
                        (long)i,
                        l);
            }
        }
    }
}

} // namespace

void check_hnsw_graph(const faiss::HNSW& h, int64_t ntotal) {
    check_hnsw_levels(h, ntotal);
    check_hnsw_links(h, ntotal);
    if (ntotal == 0) {
        FAISS_THROW_IF_NOT_MSG(
                h.entry_point == -1,
                "faiss-turbo read: HNSW graph: entry point in an empty graph");
    } else {
        FAISS_THROW_IF_NOT_MSG(
                h.entry_point >= 0 && h.entry_point < ntotal &&
                        h.max_level == h.levels[h.entry_point] - 1,
                "faiss-turbo read: HNSW graph: bad entry point");
    }
    const int kMaxEf = 1 << 24;
    // upper_beam sizes a search's buffer (0: a write through its empty
    // data); assign_probas, one per level, indexes cum_nneighbor_per_level
    // when vectors are added
    FAISS_THROW_IF_NOT_MSG(
            h.efSearch >= 1 && h.efSearch <= kMaxEf && h.efConstruction >= 1 &&
                    h.efConstruction <= kMaxEf && upper_beam_in(h, kMaxEf),
            "faiss-turbo read: HNSW graph: bad search parameters");
    FAISS_THROW_IF_NOT_MSG(
            h.assign_probas.size() + 1 == h.cum_nneighbor_per_level.size(),
            "faiss-turbo read: HNSW graph: level probabilities do not match "
            "the levels");
    for (double p : h.assign_probas) {
        FAISS_THROW_IF_NOT_MSG(
                std::isfinite(p) && p >= 0 && p <= 1,
                "faiss-turbo read: HNSW graph: bad level probabilities");
    }
}

} // namespace io
} // namespace faiss_turbo
