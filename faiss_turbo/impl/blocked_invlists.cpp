#include <faiss_turbo/impl/blocked_invlists.h>

#include <algorithm>

#include <faiss/impl/FaissAssert.h>

#include <faiss_turbo/impl/ivf_scanner.h>
#include <faiss_turbo/impl/kernels.h>
#include <faiss_turbo/impl/omp_errors.h>
#include <faiss_turbo/impl/scan_lut.h>

namespace faiss_turbo {

BlockedInvertedLists::BlockedInvertedLists(
        size_t nlist_in, const TurboQuantizer& tq_in)
    : faiss::InvertedLists(nlist_in, tq_in.code_size),
      tq(tq_in),
      codes(nlist_in),
      ids(nlist_in),
      cdot(nlist_in),
      valid(nlist_in, 0) {
    std::string why = lut_scan_unsupported(tq);
    FAISS_THROW_IF_NOT_FMT(
            why.empty(),
            "BlockedInvertedLists: the fast-scan layout does not take %s",
            why.c_str());
    // searches key candidates by (list << 32 | offset)
    FAISS_THROW_IF_NOT_FMT(
            nlist_in < (size_t(1) << 31),
            "BlockedInvertedLists: nlist=%zd >= 2^31",
            nlist_in);
    for (BlockedCodes& c : codes) {
        c.set_codec(tq);
    }
}

BlockedInvertedLists::BlockedInvertedLists(const BlockedInvertedLists& o)
    : faiss::InvertedLists(o), tq(o.tq), codes(o.codes), ids(o.ids) {
    // a search of o may be refreshing its derived terms
    std::lock_guard<std::mutex> lock(o.refresh_mutex);
    cdot = o.cdot;
    valid = o.valid;
    changed = o.changed.load();
    cdot_table = o.cdot_table;
}

void BlockedInvertedLists::refresh(
        std::shared_ptr<const IVFCentroidTable> table) {
    std::lock_guard<std::mutex> lock(refresh_mutex);
    if (table != cdot_table) {
        std::fill(valid.begin(), valid.end(), 0);
        cdot_table = table;
        changed = true;
    }
    if (!table || !changed) {
        return;
    }
    changed = false;
    OmpErrors errors;
#pragma omp parallel for schedule(dynamic)
    for (int64_t l = 0; l < (int64_t)nlist; l++) {
        errors.run([&] { refresh_list(l, table->rc.data() + l * tq.d); });
    }
    if (errors.failed()) {
        changed = true; // the lists left stale are redone next time
    }
    errors.rethrow();
}

void BlockedInvertedLists::refresh_list(size_t l, const float* rc) {
    const BlockedCodes& c = codes[l];
    const size_t d = tq.d;
    const size_t i0 = std::min(valid[l], c.ntotal), n = c.ntotal - i0;
    cdot[l].resize(c.ntotal);
    if (n > 0) {
        std::vector<uint8_t> rows(n * code_size);
        c.rows(tq, i0, n, rows.data());
        std::vector<float> chat(d);
        for (size_t i = 0; i < n; i++) {
            TQCodeScalars sc;
            tq.decode_rotated(
                    rows.data() + i * code_size, chat.data(), nullptr, sc);
            cdot[l][i0 + i] = dot_lanes(rc, chat.data(), d);
        }
    }
    valid[l] = c.ntotal; // last: a failure leaves the list stale
}

void BlockedInvertedLists::check_list(size_t list_no, const char* what) const {
    FAISS_THROW_IF_NOT_FMT(
            list_no < nlist,
            "BlockedInvertedLists::%s: list %zd of %zd",
            what,
            list_no,
            nlist);
}

size_t BlockedInvertedLists::list_size(size_t list_no) const {
    check_list(list_no, "list_size");
    return codes[list_no].ntotal;
}

const uint8_t* BlockedInvertedLists::get_codes(size_t list_no) const {
    check_list(list_no, "get_codes");
    return codes[list_no].blocks.data();
}

const idx_t* BlockedInvertedLists::get_ids(size_t list_no) const {
    check_list(list_no, "get_ids");
    return ids[list_no].data();
}

const uint8_t*
BlockedInvertedLists::get_single_code(size_t list_no, size_t offset) const {
    check_list(list_no, "get_single_code");
    std::unique_ptr<uint8_t[]> row(new uint8_t[code_size]);
    codes[list_no].code(tq, offset, row.get()); // checks offset
    return row.release();
}

void BlockedInvertedLists::release_codes(
        size_t list_no, const uint8_t* p) const {
    // get_codes' blocks stay; anything else came from get_single_code
    if (list_no < nlist && p == codes[list_no].blocks.data()) {
        return;
    }
    delete[] p;
}

size_t BlockedInvertedLists::add_entries(
        size_t list_no,
        size_t n_entry,
        const idx_t* ids_in,
        const uint8_t* code) {
    check_list(list_no, "add_entries");
    const size_t o = codes[list_no].ntotal;
    FAISS_THROW_IF_NOT_FMT(
            o + n_entry < (size_t(1) << 32),
            "BlockedInvertedLists: list %zd would hold 2^32 codes or more",
            list_no);
    reserve_more(list_no, n_entry); // the growth below cannot then fail
    codes[list_no].append(tq, n_entry, code); // beyond valid: stale
    changed = true;
    ids[list_no].insert(ids[list_no].end(), ids_in, ids_in + n_entry);
    return o;
}

void BlockedInvertedLists::update_entries(
        size_t list_no,
        size_t offset,
        size_t n_entry,
        const idx_t* ids_in,
        const uint8_t* code) {
    check_list(list_no, "update_entries");
    codes[list_no].update(tq, offset, n_entry, code); // checks the range
    valid[list_no] = std::min(valid[list_no], offset);
    changed = true;
    std::copy(ids_in, ids_in + n_entry, ids[list_no].begin() + offset);
}

void BlockedInvertedLists::reserve_more(size_t list_no, size_t n_more) {
    check_list(list_no, "reserve_more");
    grow_capacity(ids[list_no], ids[list_no].size() + n_more);
    codes[list_no].reserve(codes[list_no].ntotal + n_more, &tq);
}

void BlockedInvertedLists::resize(size_t list_no, size_t new_size) {
    check_list(list_no, "resize");
    codes[list_no].resize(new_size);
    ids[list_no].resize(new_size, -1);
    valid[list_no] = std::min(valid[list_no], new_size);
    changed = true;
    if (new_size == 0) {
        std::vector<float>().swap(cdot[list_no]);
    }
}

void BlockedInvertedLists::get_rows(size_t list_no, uint8_t* out) const {
    check_list(list_no, "get_rows");
    codes[list_no].rows(tq, 0, codes[list_no].ntotal, out);
}

size_t BlockedInvertedLists::bytes() const {
    std::lock_guard<std::mutex> lock(refresh_mutex);
    size_t b = 0;
    for (size_t l = 0; l < nlist; l++) {
        b += codes[l].bytes() + ids[l].size() * sizeof(idx_t) +
             cdot[l].size() * sizeof(float);
    }
    return b;
}

ListRows::ListRows(const faiss::InvertedLists& il, size_t list_no) {
    if (auto b = dynamic_cast<const BlockedInvertedLists*>(&il)) {
        copy.resize(b->list_size(list_no) * b->code_size);
        b->get_rows(list_no, copy.data());
        data = copy.data();
    } else {
        scoped.reset(new faiss::InvertedLists::ScopedCodes(&il, list_no));
        data = scoped->get();
    }
}

} // namespace faiss_turbo
