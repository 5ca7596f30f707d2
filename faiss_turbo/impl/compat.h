/**
 * The one place that knows which FAISS version we build against.
 * Supported: 1.7.3 (Debian bookworm) and 1.8 .. 1.15.
 */
#pragma once

#include <type_traits>
#include <utility>

#include <faiss/Index.h>
#include <faiss/IndexIVF.h>

#if FAISS_VERSION_MAJOR == 1 && FAISS_VERSION_MINOR == 7 &&                    \
        FAISS_VERSION_PATCH < 4
#define FAISS_TURBO_HAS_GLOBAL_IDX_T 0
#else
#define FAISS_TURBO_HAS_GLOBAL_IDX_T 1
#endif

// 1.8 renamed IndexIVF::train_residual to train_encoder
#define FAISS_TURBO_HAS_TRAIN_ENCODER                                          \
    (FAISS_VERSION_MAJOR > 1 || FAISS_VERSION_MINOR >= 8)

// 1.9: IndexFlatCodes implements search itself (we override it anyway)
// 1.11: IndexFlatCodes::codes is a MaybeOwnedVector; get_InvertedListScanner
//       takes IVFSearchParameters
#define FAISS_TURBO_SCANNER_TAKES_PARAMS                                       \
    (FAISS_VERSION_MAJOR > 1 || FAISS_VERSION_MINOR >= 11)
// 1.12: IndexIVF's constructor takes own_invlists
#define FAISS_TURBO_IVF_CTOR_OWN_INVLISTS                                      \
    (FAISS_VERSION_MAJOR > 1 || FAISS_VERSION_MINOR >= 12)
// 1.14: scan_codes takes a ResultHandler; 1.15: scan_codes(..., k) is final
#define FAISS_TURBO_SCAN_CODES_HANDLER                                         \
    (FAISS_VERSION_MAJOR > 1 || FAISS_VERSION_MINOR >= 14)
#define FAISS_TURBO_SCAN_CODES_K_FINAL                                         \
    (FAISS_VERSION_MAJOR > 1 || FAISS_VERSION_MINOR >= 15)
// 1.8 (same change as train_encoder): by_residual is a field of IndexIVF;
// before, each IVF subclass declares its own
#define FAISS_TURBO_IVF_HAS_BY_RESIDUAL FAISS_TURBO_HAS_TRAIN_ENCODER
// 1.8 (IndexIVFInterface): IndexIVF::range_search_preassigned is virtual,
// so our declaration of it overrides; in 1.7.3 it only hides FAISS's
#if FAISS_TURBO_HAS_TRAIN_ENCODER
#define FAISS_TURBO_RANGE_PREASSIGNED_OVERRIDE override
#else
#define FAISS_TURBO_RANGE_PREASSIGNED_OVERRIDE
#endif

namespace faiss_turbo {

#if FAISS_TURBO_HAS_GLOBAL_IDX_T
using idx_t = faiss::idx_t;
#else
using idx_t = faiss::Index::idx_t;
#endif

#ifndef SWIG
/// the type of IndexIVF::copy_subset_to's subset_type: int (1.7.3),
/// InvertedLists::subset_type_t later; read off the member itself
template <class M> struct second_param;
template <class R, class C, class A1, class A2, class... Rest>
struct second_param<R (C::*)(A1, A2, Rest...) const> {
    using type = A2;
};
using ivf_subset_type_t =
        typename second_param<decltype(&faiss::IndexIVF::copy_subset_to)>::type;
#endif

/// codes storage of IndexFlatCodes: std::vector (< 1.11) or MaybeOwnedVector
template <class Codes> inline uint8_t* codes_data(Codes& codes) {
    return codes.data();
}

#ifndef SWIG
// Members FAISS renamed or dropped, detected on the type itself (the
// release that changed each is not in the version macros we can trust).

/// ThreadedIndex (IndexShards, IndexReplicas) deletes its members when
/// own_fields is set, renamed own_indices in later releases
template <class T, class = void> struct has_own_indices : std::false_type {};
template <class T>
struct has_own_indices<T, std::void_t<decltype(std::declval<T&>().own_indices)>>
    : std::true_type {};

template <class T> inline void set_owns_members(T& t) {
    if constexpr (has_own_indices<T>::value) {
        t.own_indices = true;
    } else {
        t.own_fields = true;
    }
}

/// IndexHNSW::reconstruct_from_neighbors: gone in later releases
template <class H, class = void>
struct has_reconstruct_from_neighbors : std::false_type {};
template <class H>
struct has_reconstruct_from_neighbors<
        H,
        std::void_t<decltype(std::declval<H&>().reconstruct_from_neighbors)>>
    : std::true_type {};

template <class H> inline bool reconstructs_from_neighbors(const H& h) {
    if constexpr (has_reconstruct_from_neighbors<H>::value) {
        return h.reconstruct_from_neighbors != nullptr;
    } else {
        return false;
    }
}

/// HNSW::upper_beam: gone in later releases, whose readers skip its field
template <class H, class = void> struct has_upper_beam : std::false_type {};
template <class H>
struct has_upper_beam<H, std::void_t<decltype(std::declval<H&>().upper_beam)>>
    : std::true_type {};

/// whether HNSW::upper_beam, where there is one, is in [1, max]
template <class H> inline bool upper_beam_in(const H& h, int max) {
    if constexpr (has_upper_beam<H>::value) {
        return h.upper_beam >= 1 && h.upper_beam <= max;
    } else {
        return true;
    }
}
#endif

} // namespace faiss_turbo
