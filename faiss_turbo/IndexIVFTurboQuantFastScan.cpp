#include <faiss_turbo/IndexIVFTurboQuantFastScan.h>

#include <memory>

#include <faiss/impl/FaissAssert.h>

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

} // namespace faiss_turbo
