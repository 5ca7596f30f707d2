/**
 * Nodes of our own index types: IndexTurboQuant, IndexTurboQuantFastScan
 * and IndexIVFTurboQuant.
 */
#include <cmath>
#include <memory>
#include <type_traits>
#include <typeinfo>

#include <faiss/invlists/InvertedLists.h>

#include <faiss_turbo/IndexIVFTurboQuant.h>
#include <faiss_turbo/IndexIVFTurboQuantFastScan.h>
#include <faiss_turbo/IndexTurboQuant.h>
#include <faiss_turbo/IndexTurboQuantFastScan.h>
#include <faiss_turbo/impl/blocked_invlists.h>
#include <faiss_turbo/impl/io_codec.h>
#include <faiss_turbo/impl/io_nodes.h>
#include <faiss_turbo/impl/scan_lut.h>

namespace faiss_turbo {
namespace io {

namespace {

/// std::vector (FAISS < 1.11) or MaybeOwnedVector: moved when possible
template <class Codes>
void assign_codes(Codes& dst, std::vector<uint8_t>&& src) {
    if constexpr (std::is_same<Codes, std::vector<uint8_t>>::value) {
        dst = std::move(src);
    } else {
        dst.resize(src.size());
        memcpy(codes_data(dst), src.data(), src.size());
    }
}

/// the codes section of n codes of code_size bytes
std::vector<uint8_t> read_codes(
        SectionReader& r,
        int64_t n,
        size_t code_size,
        uint32_t tag = kTagCodes) {
    Section s = r.next(tag, "the codes");
    FAISS_THROW_IF_NOT_FMT(
            s.data.size() % code_size == 0 &&
                    s.data.size() / code_size == (uint64_t)n,
            "faiss-turbo read: %s holds %zd bytes, not %ld codes of %zd "
            "bytes",
            s.name().c_str(),
            s.data.size(),
            (long)n,
            code_size);
    return std::move(s.data);
}

/// search_defaults end a TQFL / TQIV head: scan_mode, rerank_factor, then
/// prescan only when it is not 0 (so that files without it read as
/// before). Files written before they were stored end without them: those
/// read with the defaults.
void put_search_defaults(
        PayloadWriter& w, const SearchParametersTurboQuant& s) {
    // refuse now what could not be read back: what a search refuses too
    // (check_scan_options: any finite rerank_factor >= 0)
    FAISS_THROW_IF_NOT_FMT(
            (s.scan_mode == TQ_SCAN_EXACT || s.scan_mode == TQ_SCAN_INT8) &&
                    std::isfinite(s.rerank_factor) && s.rerank_factor >= 0 &&
                    s.prescan >= 0,
            "faiss-turbo write: search_defaults scan_mode=%d "
            "rerank_factor=%g prescan=%d are out of range",
            s.scan_mode,
            s.rerank_factor,
            s.prescan);
    w.put<int32_t>(s.scan_mode);
    w.put<float>(s.rerank_factor);
    if (s.prescan != 0) {
        w.put<int32_t>(s.prescan);
    }
}

SearchParametersTurboQuant get_search_defaults(PayloadReader& pr) {
    SearchParametersTurboQuant s;
    if (pr.remaining() == 0) {
        return s;
    }
    int32_t mode = pr.get<int32_t>();
    float rf = pr.get<float>();
    int32_t prescan = pr.remaining() == 0 ? 0 : pr.get<int32_t>();
    FAISS_THROW_IF_NOT_FMT(
            (mode == TQ_SCAN_EXACT || mode == TQ_SCAN_INT8) &&
                    std::isfinite(rf) && rf >= 0 && prescan >= 0,
            "faiss-turbo read: %s: bad search defaults (scan_mode %d, "
            "rerank_factor %g, prescan %d)",
            pr.what.c_str(),
            mode,
            rf,
            prescan);
    s.scan_mode = mode;
    s.rerank_factor = rf;
    s.prescan = prescan;
    return s;
}

/*************************************************************
 * IndexTurboQuant (TQFL) and IndexTurboQuantFastScan (TQFS): head
 * {IndexFields, centered, [search defaults]}, codec, codes (row layout for
 * both: the fast-scan blocks are rebuilt on reading)
 *************************************************************/

void write_flat_node(
        uint32_t tag,
        const faiss::Index& idx,
        const TurboQuantizer& tq,
        bool centered,
        const SearchParametersTurboQuant& defaults,
        const uint8_t* codes,
        size_t nbytes,
        SectionWriter& w) {
    PayloadWriter head;
    put_index_fields(head, idx);
    head.put<uint8_t>(centered);
    put_search_defaults(head, defaults);
    w.write(tag, head);
    write_codec(tq, w);
    w.write(kTagCodes, codes, nbytes);
}

void write_tq_flat(const IndexTurboQuant& idx, SectionWriter& w) {
    FAISS_THROW_IF_NOT_MSG(
            idx.code_size == idx.tq.code_size &&
                    idx.codes.size() == idx.ntotal * idx.code_size,
            "faiss-turbo write: IndexTurboQuant is inconsistent (code_size "
            "or codes)");
    write_flat_node(
            kTagTQFlat,
            idx,
            idx.tq,
            idx.centered,
            idx.search_defaults,
            idx.codes.data(),
            idx.codes.size(),
            w);
}

void write_tq_fastscan(const IndexTurboQuantFastScan& idx, SectionWriter& w) {
    FAISS_THROW_IF_NOT_MSG(
            idx.codes.ntotal == (size_t)idx.ntotal,
            "faiss-turbo write: IndexTurboQuantFastScan is inconsistent");
    // the row codes: a copy while writing (the blocks are not the format)
    std::vector<uint8_t> codes(idx.ntotal * idx.tq.code_size);
    idx.get_codes(0, idx.ntotal, codes.data());
    write_flat_node(
            kTagTQFastScan,
            idx,
            idx.tq,
            idx.centered,
            idx.search_defaults,
            codes.data(),
            codes.size(),
            w);
}

/// what a TQFL / TQFS node holds, checked
struct FlatNode {
    IndexFields f;
    bool centered = false;
    SearchParametersTurboQuant defaults;
    TurboQuantizer tq;
    std::vector<uint8_t> codes;

    FlatNode(const Section& head, SectionReader& r, const char* cls) {
        PayloadReader pr = head.reader();
        f = get_index_fields(pr);
        centered = get_bool(pr);
        defaults = get_search_defaults(pr);
        pr.expect_end();
        FAISS_THROW_IF_NOT_FMT(
                f.metric == faiss::METRIC_L2 ||
                        f.metric == faiss::METRIC_INNER_PRODUCT,
                "faiss-turbo read: %s: metric %d is not supported by %s",
                head.name().c_str(),
                (int)f.metric,
                cls);
        read_codec(r, tq);
        FAISS_THROW_IF_NOT_FMT(
                (size_t)f.d == tq.d,
                "faiss-turbo read: %s: d=%ld but the codec has d=%zd",
                head.name().c_str(),
                (long)f.d,
                tq.d);
        // a centered index is trained exactly when it has its mean
        bool trained = !centered || !tq.mean.empty();
        FAISS_THROW_IF_NOT_FMT(
                f.is_trained == trained && (trained || f.ntotal == 0) &&
                        (centered || tq.mean.empty()),
                "faiss-turbo read: %s: inconsistent centered / trained / mean",
                head.name().c_str());
        codes = read_codes(r, f.ntotal, tq.code_size);
    }
};

faiss::Index* read_tq_flat(const Section& head, SectionReader& r) {
    FlatNode n(head, r, "IndexTurboQuant");
    auto idx = std::make_unique<IndexTurboQuant>();
    apply_index_fields(n.f, *idx);
    idx->tq = std::move(n.tq);
    idx->centered = n.centered;
    idx->search_defaults = n.defaults;
    idx->code_size = idx->tq.code_size;
    assign_codes(idx->codes, std::move(n.codes));
    return idx.release();
}

faiss::Index* read_tq_fastscan(const Section& head, SectionReader& r) {
    FlatNode n(head, r, "IndexTurboQuantFastScan");
    std::string why = lut_scan_unsupported(n.tq);
    FAISS_THROW_IF_NOT_FMT(
            why.empty(),
            "faiss-turbo read: %s: the fast-scan layout does not take %s",
            head.name().c_str(),
            why.c_str());
    auto idx = std::make_unique<IndexTurboQuantFastScan>();
    apply_index_fields(n.f, *idx);
    idx->tq = std::move(n.tq);
    idx->centered = n.centered;
    idx->search_defaults = n.defaults;
    idx->codes.set_codec(idx->tq);
    idx->ntotal = 0;
    idx->add_codes(n.f.ntotal, n.codes.data());
    return idx.release();
}

/*************************************************************
 * IndexIVFTurboQuant: head {IndexFields, IVF fields}, codec,
 * ILSZ {u64[nlist]}, ILCO {codes, list after list}, ILID {i64 ids, same
 * order}, quantizer node
 *************************************************************/

/// TQIV, or TQIF (IndexIVFTurboQuantFastScan) with the same sections
void write_tq_ivf(
        const IndexIVFTurboQuant& idx,
        SectionWriter& w,
        int depth,
        uint32_t tag) {
    FAISS_THROW_IF_NOT_MSG(
            idx.invlists && idx.quantizer && idx.code_size == idx.tq.code_size,
            "faiss-turbo write: IndexIVFTurboQuant without inverted lists, "
            "quantizer or with a wrong code_size");
    const faiss::InvertedLists& il = *idx.invlists;
    PayloadWriter head;
    put_index_fields(head, idx);
    head.put<uint64_t>(idx.nlist);
    head.put<uint64_t>(idx.nprobe);
    head.put<uint64_t>(idx.max_codes);
    head.put<int32_t>(idx.parallel_mode);
    head.put<uint8_t>(idx.by_residual);
    head.put<uint8_t>(idx.centered);
    head.put<uint8_t>(idx.quantizer_trains_alone);
    head.put<uint8_t>((uint8_t)idx.direct_map.type);
    FAISS_THROW_IF_NOT_FMT(
            idx.search_defaults.prescan == 0,
            "faiss-turbo write: IVF search_defaults.prescan=%d: the sign "
            "pre-scan is an option of the flat indexes",
            idx.search_defaults.prescan);
    put_search_defaults(head, idx.search_defaults);
    w.write(tag, head);
    write_codec(idx.tq, w);

    // any InvertedLists as row codes: the ListRows / ScopedIds objects
    // keep the data alive while it is written (blocked lists: a copy)
    std::vector<uint64_t> sizes(idx.nlist);
    std::vector<std::unique_ptr<ListRows>> codes;
    std::vector<std::unique_ptr<faiss::InvertedLists::ScopedIds>> ids;
    std::vector<SectionWriter::Chunk> code_chunks, id_chunks;
    uint64_t total = 0;
    for (size_t l = 0; l < idx.nlist; l++) {
        sizes[l] = il.list_size(l);
        total += sizes[l];
        if (sizes[l] == 0) {
            continue;
        }
        codes.emplace_back(new ListRows(il, l));
        ids.emplace_back(new faiss::InvertedLists::ScopedIds(&il, l));
        code_chunks.push_back({codes.back()->get(), sizes[l] * il.code_size});
        id_chunks.push_back({ids.back()->get(), sizes[l] * sizeof(int64_t)});
    }
    FAISS_THROW_IF_NOT_FMT(
            total == (uint64_t)idx.ntotal && il.code_size == idx.code_size &&
                    il.nlist == idx.nlist,
            "faiss-turbo write: IndexIVFTurboQuant: the lists hold %zd "
            "entries, ntotal=%ld",
            (size_t)total,
            (long)idx.ntotal);
    w.write(kTagInvListSizes, sizes.data(), sizes.size() * sizeof(uint64_t));
    w.write(kTagInvListCodes, code_chunks);
    w.write(kTagInvListIds, id_chunks);
    write_node(idx.quantizer, w, depth + 1);
}

struct IVFHead {
    IndexFields f;
    uint64_t nlist, nprobe, max_codes;
    int32_t parallel_mode;
    bool by_residual, centered;
    uint8_t trains_alone, direct_map;
    SearchParametersTurboQuant defaults;
};

IVFHead get_ivf_head(const Section& head) {
    PayloadReader pr = head.reader();
    IVFHead h;
    h.f = get_index_fields(pr);
    h.nlist = pr.get<uint64_t>();
    h.nprobe = pr.get<uint64_t>();
    h.max_codes = pr.get<uint64_t>();
    h.parallel_mode = pr.get<int32_t>();
    h.by_residual = get_bool(pr);
    h.centered = get_bool(pr);
    h.trains_alone = pr.get<uint8_t>();
    h.direct_map = pr.get<uint8_t>();
    h.defaults = get_search_defaults(pr);
    pr.expect_end();
    FAISS_THROW_IF_NOT_FMT(
            h.defaults.prescan == 0,
            "faiss-turbo read: %s: an IVF index with prescan=%d (a "
            "flat-index option)",
            head.name().c_str(),
            h.defaults.prescan);
    const int32_t kNoHeapInit = 1024; // IndexIVF::PARALLEL_MODE_NO_HEAP_INIT
    int32_t pm = h.parallel_mode & ~kNoHeapInit;
    FAISS_THROW_IF_NOT_FMT(
            (h.f.metric == faiss::METRIC_L2 ||
             h.f.metric == faiss::METRIC_INNER_PRODUCT) &&
                    h.nlist >= 1 && h.nlist <= (uint64_t)kMaxNtotal &&
                    h.nprobe >= 1 && h.nprobe <= (uint64_t)kMaxNtotal &&
                    pm >= 0 && pm <= 3 && h.trains_alone <= 2 &&
                    h.direct_map <= 2 && (h.f.is_trained || h.f.ntotal == 0),
            "faiss-turbo read: %s: bad IVF fields (metric %d, nlist %zd, "
            "nprobe %zd, parallel_mode %d)",
            head.name().c_str(),
            (int)h.f.metric,
            (size_t)h.nlist,
            (size_t)h.nprobe,
            h.parallel_mode);
    return h;
}

/// the three list sections into ArrayInvertedLists, or BlockedInvertedLists
/// (made once nlist is checked against the sizes section)
faiss::InvertedLists* read_invlists(
        SectionReader& r,
        const IVFHead& h,
        const TurboQuantizer& tq,
        bool blocked) {
    const size_t code_size = tq.code_size;
    Section ssz = r.next(kTagInvListSizes, "the inverted list sizes");
    FAISS_THROW_IF_NOT_FMT(
            ssz.data.size() == h.nlist * sizeof(uint64_t),
            "faiss-turbo read: %s holds %zd bytes for %zd lists",
            ssz.name().c_str(),
            ssz.data.size(),
            (size_t)h.nlist);
    std::vector<uint64_t> sizes(h.nlist);
    memcpy(sizes.data(), ssz.data.data(), ssz.data.size());
    uint64_t total = 0;
    for (uint64_t s : sizes) {
        FAISS_THROW_IF_NOT_FMT(
                s <= (uint64_t)h.f.ntotal - total,
                "faiss-turbo read: %s: the lists hold more than ntotal=%ld",
                ssz.name().c_str(),
                (long)h.f.ntotal);
        total += s;
    }
    FAISS_THROW_IF_NOT_FMT(
            total == (uint64_t)h.f.ntotal,
            "faiss-turbo read: %s: the lists hold %zd entries, ntotal=%ld",
            ssz.name().c_str(),
            (size_t)total,
            (long)h.f.ntotal);
    std::vector<uint8_t> codes =
            read_codes(r, h.f.ntotal, code_size, kTagInvListCodes);
    Section sid = r.next(kTagInvListIds, "the inverted list ids");
    FAISS_THROW_IF_NOT_FMT(
            sid.data.size() == total * sizeof(int64_t),
            "faiss-turbo read: %s holds %zd bytes for %zd ids",
            sid.name().c_str(),
            sid.data.size(),
            (size_t)total);
    const int64_t* ids = reinterpret_cast<const int64_t*>(sid.data.data());
    std::unique_ptr<faiss::InvertedLists> il;
    if (blocked) {
        il.reset(new BlockedInvertedLists(h.nlist, tq));
    } else {
        il.reset(new faiss::ArrayInvertedLists(h.nlist, code_size));
    }
    uint64_t ofs = 0;
    for (size_t l = 0; l < h.nlist; l++) {
        if (sizes[l] > 0) {
            il->add_entries(
                    l, sizes[l], ids + ofs, codes.data() + ofs * code_size);
        }
        ofs += sizes[l];
    }
    return il.release();
}

faiss::Index* read_tq_ivf(const Section& head, SectionReader& r, int depth) {
    IVFHead h = get_ivf_head(head);
    const bool fs = head.tag == kTagTQIVFFastScan;
    std::unique_ptr<IndexIVFTurboQuant> idx(
            fs ? new IndexIVFTurboQuantFastScan() : new IndexIVFTurboQuant());
    read_codec(r, idx->tq);
    const TurboQuantizer& tq = idx->tq;
    // files of earlier versions have no ip_offset: their inner products
    // are scored as they were
    FAISS_THROW_IF_NOT_FMT(
            !tq.ip_offset || h.f.metric == faiss::METRIC_INNER_PRODUCT,
            "faiss-turbo read: %s: an ip_offset codec in an L2 IVF index",
            head.name().c_str());
    // with residuals "centered" learns no mean (the centroid is the mean):
    // "IVF256,TQmse4c" indexes hold none
    const bool learns_mean = h.centered && !h.by_residual;
    FAISS_THROW_IF_NOT_FMT(
            (size_t)h.f.d == tq.d &&
                    (learns_mean ? tq.mean.empty() == !h.f.is_trained
                                 : tq.mean.empty()),
            "faiss-turbo read: %s: d, centered, by_residual or the mean do "
            "not agree with the codec",
            head.name().c_str());
    if (fs) {
        std::string why = lut_scan_unsupported(tq);
        FAISS_THROW_IF_NOT_FMT(
                why.empty(),
                "faiss-turbo read: %s: the fast-scan layout does not take %s",
                head.name().c_str(),
                why.c_str());
    }
    idx->invlists = read_invlists(r, h, tq, fs);
    idx->own_invlists = true;
    std::unique_ptr<faiss::Index> q(read_node(r, depth + 1));
    FAISS_THROW_IF_NOT_FMT(
            q->d == h.f.d && (!h.f.is_trained || q->ntotal == (int64_t)h.nlist),
            "faiss-turbo read: %s: coarse quantizer d=%ld ntotal=%ld for "
            "d=%ld nlist=%zd",
            head.name().c_str(),
            (long)q->d,
            (long)q->ntotal,
            (long)h.f.d,
            (size_t)h.nlist);
    idx->quantizer = q.release();
    idx->own_fields = true;
    apply_index_fields(h.f, *idx);
    idx->nlist = h.nlist;
    idx->nprobe = h.nprobe;
    idx->max_codes = h.max_codes;
    idx->parallel_mode = h.parallel_mode;
    idx->by_residual = h.by_residual;
    idx->centered = h.centered;
    idx->quantizer_trains_alone = h.trains_alone;
    idx->search_defaults = h.defaults;
    idx->code_size = tq.code_size;
    // rebuilt from the lists (Array throws unless the ids are 0..ntotal-1)
    idx->set_direct_map_type((faiss::DirectMap::Type)h.direct_map);
    idx->reset_centroid_table();
    return idx.release();
}

} // namespace

bool write_turbo_node(const faiss::Index* idx, SectionWriter& w, int depth) {
    // exact types: a subclass may hold more than we would write
    if (typeid(*idx) == typeid(IndexTurboQuant)) {
        write_tq_flat(*static_cast<const IndexTurboQuant*>(idx), w);
        return true;
    }
    if (typeid(*idx) == typeid(IndexTurboQuantFastScan)) {
        write_tq_fastscan(*static_cast<const IndexTurboQuantFastScan*>(idx), w);
        return true;
    }
    if (typeid(*idx) == typeid(IndexIVFTurboQuant)) {
        write_tq_ivf(
                *static_cast<const IndexIVFTurboQuant*>(idx),
                w,
                depth,
                kTagTQIVF);
        return true;
    }
    if (typeid(*idx) == typeid(IndexIVFTurboQuantFastScan)) {
        write_tq_ivf(
                *static_cast<const IndexIVFTurboQuant*>(idx),
                w,
                depth,
                kTagTQIVFFastScan);
        return true;
    }
    return false;
}

faiss::Index*
read_turbo_node(const Section& head, SectionReader& r, int depth) {
    if (head.tag == kTagTQFlat) {
        return read_tq_flat(head, r);
    }
    if (head.tag == kTagTQFastScan) {
        return read_tq_fastscan(head, r);
    }
    if (head.tag == kTagTQIVF || head.tag == kTagTQIVFFastScan) {
        return read_tq_ivf(head, r, depth);
    }
    return nullptr;
}

} // namespace io
} // namespace faiss_turbo
