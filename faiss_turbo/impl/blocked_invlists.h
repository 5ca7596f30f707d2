/**
 * Inverted lists of IndexIVFTurboQuantFastScan: each list's codes in the
 * fast-scan layout (BlockedCodes: blocks of 32 codes and per-field floats),
 * the only copy of the codes.
 *
 * As with FAISS's BlockInvertedLists, get_codes() returns a list's blocks,
 * not row codes: the scanner reads them as blocks. Everything else takes
 * and gives the codec's row codes (TurboQuantizer.h): add_entries,
 * update_entries, get_single_code (a copy, freed by release_codes, so
 * FAISS's ScopedCodes works: remove_ids, reconstruct, copy_subset_to) and
 * ListRows (files, merges, the GPU copy). FAISS's
 * InvertedLists::merge_from reads get_codes as rows, so the index
 * overrides merge_from.
 */
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

#include <faiss/invlists/InvertedLists.h>

#include <faiss_turbo/TurboQuantizer.h>
#include <faiss_turbo/impl/blocked_codes.h>
#include <faiss_turbo/impl/compat.h>

namespace faiss_turbo {

struct IVFCentroidTable;

struct BlockedInvertedLists : faiss::InvertedLists {
    /// the row layout of the codes (the codec's rotation and mean are not
    /// used: the lists only convert codes)
    TurboQuantizer tq;
    std::vector<BlockedCodes> codes;
    std::vector<std::vector<idx_t>> ids;

    /** Derived, in memory only: per list, <R c_l, c_hat_i> of its codes
     * (c_hat_i as decode_rotated gives it, R c_l from the index's centroid
     * table). With it a residual code's dot with the list's query is
     * <y - R c_l, c_hat> = <y, c_hat> - cdot, so one query's tables serve
     * every list (impl/ivf_scanner). Computed by refresh(); a list that
     * changed since is stale and scanned with tables of its own. Only
     * what changed is recomputed: appended codes, and the codes from the
     * first updated or cut position on. */
    std::vector<std::vector<float>> cdot;

    /// tq: a TQmse codec the fast-scan layout takes (lut_scan_unsupported)
    BlockedInvertedLists(size_t nlist, const TurboQuantizer& tq);

    /// a copy (the derived cdot included)
    BlockedInvertedLists(const BlockedInvertedLists& other);

    /// cdot of the stale codes, against table (all of them if the table
    /// changed). Thread-safe; called before a search's parallel loops
    void refresh(std::shared_ptr<const IVFCentroidTable> table);

    /// whether list_no's cdot holds for table
    bool fresh(size_t list_no, const IVFCentroidTable* table) const {
        return table == cdot_table.get() &&
               valid[list_no] == codes[list_no].ntotal;
    }

    size_t list_size(size_t list_no) const override;

    /// the list's blocks (BlockedCodes::blocks), not row codes
    const uint8_t* get_codes(size_t list_no) const override;

    const idx_t* get_ids(size_t list_no) const override;

    /// row code offset of the list, in a buffer that release_codes frees
    const uint8_t*
    get_single_code(size_t list_no, size_t offset) const override;

    /// frees what get_single_code returned (get_codes' blocks are kept)
    void release_codes(size_t list_no, const uint8_t* codes) const override;

    /// n_entry row codes
    size_t add_entries(
            size_t list_no,
            size_t n_entry,
            const idx_t* ids,
            const uint8_t* code) override;

    void update_entries(
            size_t list_no,
            size_t offset,
            size_t n_entry,
            const idx_t* ids,
            const uint8_t* code) override;

    void resize(size_t list_no, size_t new_size) override;

    /// memory for n_more codes and ids in the list, so that adding them
    /// on this thread allocates nothing (IndexIVFTurboQuant::add_with_ids)
    void reserve_more(size_t list_no, size_t n_more);

    /// the list's row codes (list_size x code_size bytes) into out
    void get_rows(size_t list_no, uint8_t* out) const;

    /// memory held by codes, ids and cdot, in bytes
    size_t bytes() const;

   private:
    void check_list(size_t list_no, const char* what) const;

    /// refresh() of list l: cdot of its stale codes, rc = R c_l
    void refresh_list(size_t l, const float* rc);

    /// per list: cdot holds for its first valid[l] codes
    std::vector<size_t> valid;
    /// a list changed since the last refresh (which then skips its pass
    /// over all nlist lists: it runs before every search). Atomic: FAISS
    /// adds to different lists from several threads
    std::atomic<bool> changed{true};
    std::shared_ptr<const IVFCentroidTable> cdot_table;
    mutable std::mutex
            refresh_mutex; ///< guards cdot, valid, changed, cdot_table
};

/// a list's codes as rows, whatever the InvertedLists: a view of
/// get_codes(), or a copy for blocked lists
struct ListRows {
    ListRows(const faiss::InvertedLists& il, size_t list_no);

    const uint8_t* get() const {
        return data;
    }

   private:
    std::unique_ptr<faiss::InvertedLists::ScopedCodes> scoped;
    std::vector<uint8_t> copy;
    const uint8_t* data = nullptr;
};

} // namespace faiss_turbo
