#include <faiss_turbo/IndexIVFTurboQuantFastScan.h>

#include <algorithm>
#include <memory>

#include <faiss/impl/FaissAssert.h>

#include <faiss_turbo/impl/ivf_scan_lut.h>
#include <faiss_turbo/impl/kernels.h>
#include <faiss_turbo/impl/scan_lut.h>

namespace faiss_turbo {

IndexIVFTurboQuantFastScan::IndexIVFTurboQuantFastScan() = default;

IndexIVFTurboQuantFastScan::IndexIVFTurboQuantFastScan(
        faiss::Index* quantizer,
        size_t d,
        size_t nlist,
        float bits,
        faiss::MetricType metric,
        bool by_residual,
        bool centered,
        bool debiased,
        RotationType rotation_type,
        uint64_t seed)
    : IndexIVFTurboQuant(
              quantizer,
              d,
              nlist,
              bits,
              TQVariant::MSE,
              metric,
              by_residual,
              centered,
              debiased,
              rotation_type,
              QJLType::GAUSSIAN,
              seed) {
    std::string why = lut_scan_unsupported(tq);
    FAISS_THROW_IF_NOT_FMT(
            why.empty(),
            "IndexIVFTurboQuantFastScan: the fast-scan layout does not take "
            "%s",
            why.c_str());
    replace_invlists(new BlockedInvertedLists(nlist, tq), true);
}

IndexIVFTurboQuantFastScan* IndexIVFTurboQuantFastScan::clone() const {
    std::unique_ptr<IndexIVFTurboQuantFastScan> res(
            new IndexIVFTurboQuantFastScan(*this));
    deepen_copy(*res);
    return res.release();
}

const BlockedInvertedLists& IndexIVFTurboQuantFastScan::blocked_lists() const {
    auto b = dynamic_cast<const BlockedInvertedLists*>(invlists);
    FAISS_THROW_IF_NOT_MSG(
            b,
            "IndexIVFTurboQuantFastScan: the inverted lists are not "
            "BlockedInvertedLists");
    return *b;
}

void IndexIVFTurboQuantFastScan::search_preassigned(
        idx_t n,
        const float* x,
        idx_t k,
        const idx_t* assign,
        const float* centroid_dis,
        float* distances,
        idx_t* labels,
        bool store_pairs,
        const faiss::IVFSearchParameters* params,
        faiss::IndexIVFStats* stats) const {
    const char* what = "IndexIVFTurboQuantFastScan::search_preassigned";
    IVFScanOptions o = scan_options(params, k, what);
    check_no_prescan(params, what);
    auto lists = dynamic_cast<const BlockedInvertedLists*>(invlists);
    if (store_pairs || (parallel_mode & PARALLEL_MODE_NO_HEAP_INIT) ||
        o.scan_mode != TQ_SCAN_INT8 || !lists) {
        IndexIVFTurboQuant::search_preassigned(
                n,
                x,
                k,
                assign,
                centroid_dis,
                distances,
                labels,
                store_pairs,
                params,
                stats);
        return;
    }
    FAISS_THROW_IF_NOT_FMT(
            n >= 0 && k > 0, "%s: n=%ld, k=%ld", what, (long)n, (long)k);
    check_queries(n, x, what);
    check_lists(what);
    auto table = centroid_table();
    IVFLutSearch s{tq, *lists};
    s.table = table.get();
    s.l2 = metric_type == faiss::METRIC_L2;
    s.nprobe = check_assign(n, assign, params, what);
    s.max_codes = params ? params->max_codes : max_codes;
    s.rerank_factor = o.rerank_factor;
    s.sel = params ? params->sel : nullptr;
    s.search(n, x, assign, k, distances, labels, stats);
}

} // namespace faiss_turbo
