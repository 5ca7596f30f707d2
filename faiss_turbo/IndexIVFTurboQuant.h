/**
 * Inverted file over TurboQuant codes (see TurboQuantizer.h for the codec).
 *
 * One TurboQuantizer serves all lists, and it needs no training: train()
 * only trains the coarse quantizer (and, for the centered variant without
 * residuals, the mean). Two copies of one trained index therefore encode
 * alike and can be filled apart and merged.
 *
 * Residual scoring (by_residual). A list with centroid c stores the code of
 * r = x - c - m (m the codec's mean, empty unless centered). With R the
 * rotation, S the QJL projection and y = R (q - m) (L2) or y = R q (IP)
 * prepared once per query (TurboQuantizer::prepare_queries), the query seen
 * from list c is, exactly in real arithmetic since R is orthogonal:
 *
 *   L2:  ||q - x||^2 = ||(q - m - c) - r||^2, scored with
 *        y_c  = R (q - m - c) = y - R c
 *        Sy_c = S y_c         = S y - S R c            (PROD)
 *        qconst_c = ||q - m - c||^2 = ||y_c||^2
 *   IP:  <q, x> = <q, c> + <q - c, r> + <c, r> (ip_offset: <c, r> is
 *        stored exactly in each code, so the codes' error meets only
 *        q - c, which is much shorter than q on embeddings), scored with
 *        y_c = y - R c, Sy_c = S y - S R c and qconst_c = <y, R c>
 *        (centered without residuals: c is the mean, as in the flat
 *        index). Files of versions without ip_offset score
 *        <q, x> = <q, r> + <q, c> with y_c = y.
 *
 * R c and S R c are computed once per centroid (IVFCentroidTable, built on
 * first use), so preparing a list costs O(d) instead of a rotation of
 * q - c (O(d^2) for the dense rotation). In floats, y - R c differs from
 * R (q - m - c) by rounding only.
 *
 * Search modes (SearchParametersTurboQuant.h): by default the lists are
 * scanned with int8 dot products and the candidates re-scored exactly
 * (impl/ivf_scanner.h); SearchParametersIVFTurboQuant chooses per call,
 * search_defaults otherwise. range_search always scores exactly.
 *
 * Search results follow FAISS: sorted, label -1 with +inf (L2) / -inf (IP)
 * for missing results; equal scores are ordered by label as in the flat
 * index.
 */
#pragma once

#include <faiss/IndexIVF.h>

#include <faiss_turbo/SearchParametersTurboQuant.h>
#include <faiss_turbo/TurboQuantizer.h>
#include <faiss_turbo/impl/compat.h>
#include <faiss_turbo/impl/ivf_scanner.h>

namespace faiss_turbo {

/// by_residual when not given. Residuals are smaller than the vectors, so
/// the same bits quantize them better: on SIFT (9500 base, 500 queries,
/// 10-recall@10, nlist 256, all lists probed) TQmse4 gives 0.953 with
/// residuals vs 0.907 without, TQmse2 0.841 vs 0.689, TQprod3 0.809 vs
/// 0.493; residuals were ahead at every nprobe and width measured.
constexpr bool kIVFTurboQuantByResidual = true;

struct IndexIVFTurboQuant : faiss::IndexIVF {
    TurboQuantizer tq;

    /// scan_mode and rerank_factor of a search whose params are not a
    /// SearchParametersIVFTurboQuant (saved in files, as the flat index's)
    SearchParametersTurboQuant search_defaults;

    /// learn a mean in train() and encode x - mean (factory suffix "c").
    /// Only without by_residual: with residuals the centroid is the mean.
    bool centered = false;

#if !FAISS_TURBO_IVF_HAS_BY_RESIDUAL
    /// encode x - c (c the list's centroid) rather than x. From FAISS 1.8
    /// on this field is IndexIVF's own. Set by the constructor: the stored
    /// codes and tq.ip_offset follow it (read-only from Python)
    bool by_residual = kIVFTurboQuantByResidual;
#endif

    /** @param quantizer coarse quantizer (any FAISS index), not owned
     *                   unless own_fields is set
     *  @param bits      1..8 with at most one decimal; for PROD the QJL bit
     *                   is included
     *  other parameters as in IndexTurboQuant
     */
    IndexIVFTurboQuant(
            faiss::Index* quantizer,
            size_t d,
            size_t nlist,
            float bits,
            TQVariant variant = TQVariant::MSE,
            faiss::MetricType metric = faiss::METRIC_L2,
            bool by_residual = kIVFTurboQuantByResidual,
            bool centered = false,
            bool debiased = true,
            RotationType rotation_type = RotationType::AUTO,
            QJLType qjl_type = QJLType::AUTO,
            uint64_t seed = 1234);

    IndexIVFTurboQuant();

    /// a deep copy (quantizer and inverted lists included, owned); the
    /// lists must be ArrayInvertedLists or BlockedInvertedLists
    virtual IndexIVFTurboQuant* clone() const;

    /// the coarse quantizer, then the mean if centered (empty index only)
    void train(idx_t n, const float* x) override;

    /// IndexIVF's (assign, encode, store), after a check for NaN / Inf (the
    /// coarse quantizer would assign such a vector no valid list); a batch
    /// is stored once its lists' memory is reserved, on this thread (FAISS
    /// stores in a parallel loop, where out of memory ends the process)
    void add_with_ids(idx_t n, const float* x, const idx_t* xids) override;

#if FAISS_TURBO_HAS_TRAIN_ENCODER
    void train_encoder(idx_t n, const float* x, const idx_t* assign) override;
#else
    void train_residual(idx_t n, const float* x) override;
#endif

    void encode_vectors(
            idx_t n,
            const float* x,
            const idx_t* list_nos,
            uint8_t* codes,
            bool include_listnos = false) const override;

    void sa_decode(idx_t n, const uint8_t* bytes, float* x) const override;

    void reconstruct_from_offset(
            int64_t list_no, int64_t offset, float* recons) const override;

    // FAISS's defaults, so that the call reads as on an IndexIVF
#if FAISS_TURBO_SCANNER_TAKES_PARAMS
    faiss::InvertedListScanner* get_InvertedListScanner(
            bool store_pairs = false,
            const faiss::IDSelector* sel = nullptr,
            const faiss::IVFSearchParameters* params = nullptr) const override;
#else
    faiss::InvertedListScanner* get_InvertedListScanner(
            bool store_pairs = false,
            const faiss::IDSelector* sel = nullptr) const override;
#endif

    /// IndexIVF's search after checking the queries: the scanners prepare
    /// them inside FAISS's parallel loops, where an exception is fatal
    void
    search(idx_t n,
           const float* x,
           idx_t k,
           float* distances,
           idx_t* labels,
           const faiss::SearchParameters* params = nullptr) const override;

    void range_search(
            idx_t n,
            const float* x,
            float radius,
            faiss::RangeSearchResult* result,
            const faiss::SearchParameters* params = nullptr) const override;

    /// IndexIVF's search, then missing results get +inf / -inf. The
    /// options reach the scanners through the selector (see the .cpp)
    void search_preassigned(
            idx_t n,
            const float* x,
            idx_t k,
            const idx_t* assign,
            const float* centroid_dis,
            float* distances,
            idx_t* labels,
            bool store_pairs,
            const faiss::IVFSearchParameters* params = nullptr,
            faiss::IndexIVFStats* stats = nullptr) const override;

    /// IndexIVF's, after check_assign: FAISS checks the list numbers
    /// inside its parallel loop (an abort). Non-virtual in FAISS 1.7.3
    /// (this then hides it: calls through our classes are checked),
    /// virtual from 1.8 on, where this overrides it (compat.h).
    void range_search_preassigned(
            idx_t nx,
            const float* x,
            float radius,
            const idx_t* keys,
            const float* coarse_dis,
            faiss::RangeSearchResult* result,
            bool store_pairs = false,
            const faiss::IVFSearchParameters* params = nullptr,
            faiss::IndexIVFStats* stats = nullptr) const
            FAISS_TURBO_RANGE_PREASSIGNED_OVERRIDE;

    /// IndexIVF's checks plus check_same_codes
    void check_compatible_for_merge(const faiss::Index& other) const override;

    /// throws (naming `what`) unless other is an IndexIVFTurboQuant whose
    /// codes mean what ours do: the same codec (TurboQuantizer::
    /// same_codes_as), by_residual and centering
    void check_same_codes(const faiss::Index& other, const char* what) const;

    /// IndexIVF's, into an index of the same codec only (check_same_codes):
    /// FAISS checks the lists' sizes alone, and the codes would decode
    /// under another rotation or codebook
    void copy_subset_to(
            faiss::IndexIVF& other,
            ivf_subset_type_t subset_type,
            idx_t a1,
            idx_t a2) const override;

    /// IndexIVF's merge, or row codes moved list by list where the lists
    /// are blocked (IndexIVFTurboQuantFastScan: FAISS's
    /// InvertedLists::merge_from would read their blocks as rows)
    void merge_from(faiss::Index& other, idx_t add_id) override;

    /// IndexIVF's (Array or Hashtable direct map), with every id checked
    /// and every vector encoded before any moves;
    /// blocked lists are updated here (update_blocked): FAISS's
    /// DirectMap::update_codes would leak their codes (it takes
    /// get_single_code without release_codes)
    void update_vectors(int nv, const idx_t* idx, const float* v) override;

    /// forget R c, S R c of the centroids: call it after changing the
    /// coarse quantizer other than through train()
    void reset_centroid_table();

   protected:
    /// shallow: for clone() only (the pointers are then replaced)
    IndexIVFTurboQuant(const IndexIVFTurboQuant&) = default;

    /// gives res (a shallow copy of this) its own quantizer and lists
    void deepen_copy(IndexIVFTurboQuant& res) const;

    /// throws unless the lists fit the codec (before FAISS's parallel
    /// loops, where the scanners are made); blocked lists get their
    /// derived per-code terms (BlockedInvertedLists::refresh)
    void check_lists(const char* what) const;

    /// the options of a search (params or search_defaults), checked
    IVFScanOptions scan_options(
            const faiss::SearchParameters* params,
            idx_t k,
            const char* what) const;

    /// before FAISS makes scanners in its threads (which cannot throw):
    /// the options they will read, params' and, where FAISS gives them no
    /// parameters, search_defaults
    void check_scanner_options(
            const faiss::SearchParameters* params, const char* what) const;

    /// throws unless search_defaults.prescan is 0 where the search uses
    /// the defaults (a flat-index option; checked where a search starts,
    /// before FAISS's threads; files refuse it too)
    void check_no_prescan(
            const faiss::SearchParameters* params, const char* what) const;

    /// R c of the centroids when by_residual, else null
    std::shared_ptr<const IVFCentroidTable> centroid_table() const;

    /// throws unless n >= 0 and the n vectors of x are finite and, with
    /// the L2 metric, short enough for L2 distances in float: the coarse
    /// quantizer sees them first (FAISS's parallel loops, or an arbitrary
    /// list for a row whose distances are all +inf). Encode refuses those
    /// too long for float itself.
    void check_vectors(idx_t n, const float* x, const char* what) const;

    /// check_vectors for queries, which must also be short enough for
    /// inner products in float (scores overflow to +-inf and NaN past it)
    void check_queries(idx_t n, const float* x, const char* what) const;

    /// throws unless the n x nprobe list numbers of assign (nprobe from
    /// params or the index, at most nlist, as FAISS reads them) are below
    /// nlist: FAISS checks them inside its parallel loop, where a throw
    /// ends the process. Returns that nprobe.
    size_t check_assign(
            idx_t n,
            const idx_t* assign,
            const faiss::IVFSearchParameters* params,
            const char* what) const;

   private:
    IVFCentroidCache centroid_cache;

    /// update_vectors' moves over blocked lists (an Array direct map), ids
    /// checked, the new codes and lists given
    void update_blocked(
            int nv,
            const idx_t* ids,
            const idx_t* assign,
            const uint8_t* codes);

    /// update_vectors' moves with a Hashtable direct map: the old entries
    /// removed, the new ones added
    void replace_hashed(
            int nv,
            const idx_t* ids,
            const idx_t* assign,
            const uint8_t* codes);

    /// add_with_ids of at most one batch: encoded, the lists' memory
    /// reserved, then stored
    void add_batch(idx_t n, const float* x, const idx_t* xids);

    /// memory for n more codes in the lists list_nos name (row or blocked
    /// lists, valid list numbers), so that storing them allocates nothing
    void reserve_lists(idx_t n, const idx_t* list_nos);

    /// the threads FAISS's search_preassigned scans with, for n queries
    /// probing np lists each (the spare scanners made before it)
    int scan_threads(idx_t n, size_t np) const;

    /// a scanner for get_InvertedListScanner (which hands out the search's
    /// spare ones first)
    faiss::InvertedListScanner* new_scanner(
            bool store_pairs,
            const faiss::IDSelector* sel,
            const faiss::IVFSearchParameters* params) const;

    /// throws unless every id is in the direct map, once
    void check_update_ids(int nv, const idx_t* ids) const;

    /// adds each vector's list centroid to x (by_residual decoding)
    void add_centroids(idx_t n, const idx_t* list_nos, float* x) const;
};

} // namespace faiss_turbo
