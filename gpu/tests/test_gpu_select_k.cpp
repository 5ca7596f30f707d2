/**
 * launch_select_k against a host reference: both paths (warp lists for
 * k <= 128, block-wide radix and bitonic sort) on rows of every length the
 * searches give it (empty, shorter than k, longer than the block path's
 * shared-memory capacity), with tied keys, NaN, signed zeros and
 * infinities, with and without ids (-1: no entry), in segments, through row
 * offsets and counts. Skips without a device (the CPU emulation runs it).
 */
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <memory>
#include <random>
#include <vector>

#include <faiss/impl/FaissAssert.h>

#include <gpu/impl/CudaUtils.h>
#include <gpu/impl/kernels.h>
#include <gpu/tests/gpu_test_util.h>

using namespace faiss_turbo::gpu;
using tqtest::to_device_array;
using tqtest::to_host_array;

namespace {

/// the order the selection promises: by key (NaN as +inf, -0 as +0), then
/// by id
struct Entry {
    float key;
    uint32_t id;
};

float canonical(float f) {
    if (std::isnan(f)) {
        return std::numeric_limits<float>::infinity();
    }
    return f == 0.0f ? 0.0f : f;
}

/// the selection's order; larger_id_first: equal keys by the larger id
bool before(const Entry& a, const Entry& b, bool larger_id_first) {
    const float x = canonical(a.key), y = canonical(b.key);
    return x < y || (x == y && (larger_id_first ? a.id > b.id : a.id < b.id));
}

uint32_t bits(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

/// rows of keys with many ties and every special value
struct Rows {
    std::vector<float> keys;
    std::vector<int> ids;
    std::vector<int64_t> off;
    std::vector<int> counts;
    int n = 0; ///< CandidateRows::n: counts above it are clamped

    /// one_warp: the small keys only at positions whose 32-entry stripe
    /// is a multiple of 8 (all of them fall to one warp of the warp path),
    /// the others above them
    Rows(const std::vector<int>& lengths,
         int clamp,
         uint64_t seed,
         bool one_warp = false) {
        std::mt19937_64 rng(seed);
        const float specials[] = {
            std::numeric_limits<float>::quiet_NaN(),
            -0.0f,
            0.0f,
            std::numeric_limits<float>::infinity(),
            -std::numeric_limits<float>::infinity(),
            std::numeric_limits<float>::denorm_min(),
            -std::numeric_limits<float>::denorm_min()};
        n = clamp;
        for (int len : lengths) {
            off.push_back((int64_t)keys.size() + 3); // gaps between rows
            counts.push_back(len);
            keys.resize(off.back() + len);
            for (int i = 0; i < len; i++) {
                uint64_t r = rng();
                float v = (float)(int)(r % 97) * 0.25f - 8.0f; // ties
                if (r % 13 == 0) {
                    v = specials[(r >> 8) % 7];
                } else if (r % 5 == 0) {
                    v = std::ldexp((float)(r >> 20), -40); // distinct
                }
                if (one_warp) {
                    v = (i / 32) % 8 == 0 ? std::ldexp((float)(r >> 20), -40)
                                          : 1e6f + (float)(r % 1000);
                }
                keys[off.back() + i] = v;
            }
        }
        ids.resize(keys.size());
        for (size_t i = 0; i < ids.size(); i++) {
            // any order, may repeat; -1: no entry (a code a selector left
            // out)
            ids[i] = rng() % 20 == 0 ? -1 : (int)(rng() % 1000000);
        }
    }

    /// the expected output of (row, segment): k entries, padded
    std::vector<Entry> expected(
        size_t row,
        int seg,
        int seg_len,
        int k,
        bool with_ids,
        bool larger_id_first) const {
        const int m = std::min(counts[row], n);
        const int beg = seg * seg_len, end = std::min(m, beg + seg_len);
        std::vector<Entry> e;
        for (int i = beg; i < end; i++) {
            if (with_ids && ids[off[row] + i] < 0) {
                continue;
            }
            e.push_back(
                {keys[off[row] + i],
                 with_ids ? (uint32_t)ids[off[row] + i] : (uint32_t)i});
        }
        std::sort(e.begin(), e.end(), [&](const Entry& a, const Entry& b) {
            return before(a, b, larger_id_first);
        });
        e.resize(std::min<size_t>(e.size(), k));
        for (Entry& x : e) {
            x.key = canonical(x.key);
        }
        e.resize(k, Entry{std::numeric_limits<float>::infinity(), ~0u});
        return e;
    }
};

void check_select(
    const Rows& rows,
    int nseg,
    int seg_len,
    int k,
    bool with_ids,
    SelectPath path,
    bool larger_id_first = false) {
    auto keys = to_device_array(rows.keys);
    auto ids = to_device_array(rows.ids);
    auto off = to_device_array(rows.off);
    auto counts = to_device_array(rows.counts);
    const size_t nrows = rows.counts.size();
    const size_t nout = nrows * nseg * std::max(k, 1);
    auto out_keys = to_device_array(std::vector<float>(nout, -7.0f));
    auto out_ids = to_device_array(std::vector<int>(nout, -7));
    CandidateRows cr;
    cr.nrows = (int)nrows;
    cr.row_off = off.get();
    cr.counts = counts.get();
    cr.n = rows.n;
    launch_select_k(
        keys.get(),
        with_ids ? ids.get() : nullptr,
        cr,
        nseg,
        seg_len,
        k,
        out_keys.get(),
        out_ids.get(),
        nullptr,
        larger_id_first,
        path);
    TQ_CUDA_CHECK(cudaDeviceSynchronize());
    const std::vector<float> ok = to_host_array(out_keys, nout);
    const std::vector<int> oi = to_host_array(out_ids, nout);
    for (size_t r = 0; r < nrows; r++) {
        for (int g = 0; g < nseg; g++) {
            const auto want =
                    rows.expected(r, g, seg_len, k, with_ids, larger_id_first);
            for (int i = 0; i < k; i++) {
                const size_t o = (r * nseg + g) * k + i;
                const bool pad = want[i].id == ~0u;
                ASSERT_EQ(bits(ok[o]), bits(want[i].key))
                        << "k " << k << " path " << (int)path << " row " << r
                        << " seg " << g << " rank " << i << ": " << ok[o]
                        << " != " << want[i].key;
                ASSERT_EQ(oi[o], pad ? -1 : (int)want[i].id)
                        << "k " << k << " path " << (int)path << " row " << r
                        << " seg " << g << " rank " << i;
            }
        }
    }
}

// the block path sorts up to 4096 entries directly and narrows longer rows
// by radix passes: rows of 5000 and 9000 take those
const std::vector<int> kLengths = {0, 1, 5, 31, 32, 33, 100, 129, 700, 5000,
                                   9000, 64, 2};

TEST(GpuSelectK, BothPathsEqualSortedEntries) {
    SKIP_WITHOUT_GPU();
    Rows rows(kLengths, 8500, 1234);
    for (int k : {1, 2, 10, 31, 32, 33, 64, 65, 100, 128}) {
        for (SelectPath path : {SelectPath::Warp, SelectPath::Block}) {
            check_select(rows, 1, 1 << 30, k, k % 2 == 0, path);
        }
    }
    for (int k : {129, 700, 2048}) {
        check_select(rows, 1, 1 << 30, k, true, SelectPath::Auto);
    }
    // the k-th smallest key is often the only one of its batch of 32 that
    // beats the list: a threshold off by one rank misses it in about half
    // of such rows
    Rows one_warp({3000, 3000, 3000, 3000, 3000, 3000, 3000, 3000, 9000},
                  8500,
                  4321,
                  true);
    for (int k : {1, 2, 3, 10, 32, 33, 64, 100, 128}) {
        for (SelectPath path : {SelectPath::Warp, SelectPath::Block}) {
            check_select(one_warp, 1, 1 << 30, k, true, path);
        }
    }
}

TEST(GpuSelectK, LargerIdsFirstOnTies) {
    SKIP_WITHOUT_GPU();
    // the CPU's inner-product heaps keep the larger ids of equal scores
    Rows rows(kLengths, 8500, 777);
    for (int k : {1, 3, 32, 100, 129, 1000}) {
        for (bool with_ids : {false, true}) {
            check_select(rows, 1, 1 << 30, k, with_ids, SelectPath::Auto, true);
        }
    }
    for (int k : {5, 64}) {
        check_select(rows, 1, 1 << 30, k, true, SelectPath::Block, true);
    }
}

TEST(GpuSelectK, BlockPathWithThousandsOfEqualEntries) {
    SKIP_WITHOUT_GPU();
    // 5000 copies of one (key, id) (an IVF id added again and again), then
    // 1000 smaller keys: past 8 radix passes the copies still overflow the
    // 4096 slots, and must not crowd out the smaller keys
    Rows rows({6000}, 6000, 3);
    for (int i = 0; i < 6000; i++) {
        rows.keys[rows.off[0] + i] = i < 5000 ? 1.0f : -1.0f + i * 1e-4f;
        rows.ids[rows.off[0] + i] = i < 5000 ? 7 : i;
    }
    for (int k : {1200, 2048}) {
        check_select(rows, 1, 1 << 30, k, true, SelectPath::Block);
        check_select(rows, 1, 1 << 30, k, true, SelectPath::Block, true);
    }
}

TEST(GpuSelectK, SegmentsAndPositions) {
    SKIP_WITHOUT_GPU();
    // segments of a row selected apart (the first stage of a two-stage
    // selection), ids null (positions in the row)
    Rows rows({0, 3, 250, 1000, 4500}, 1 << 30, 99);
    for (int k : {1, 10, 50, 128, 300}) {
        for (SelectPath path : {SelectPath::Auto, SelectPath::Block}) {
            check_select(rows, 5, 997, k, false, path);
        }
    }
}

TEST(GpuSelectK, RefusesKOutOfRange) {
    SKIP_WITHOUT_GPU();
    Rows rows({10}, 10, 5);
    for (int k : {0, -1, kMaxSelectK + 1}) {
        EXPECT_THROW(
            check_select(rows, 1, 10, k, true, SelectPath::Auto),
            faiss::FaissException);
    }
    EXPECT_THROW(
        check_select(rows, 1, 10, kWarpSelectMaxK + 1, true, SelectPath::Warp),
        faiss::FaissException);
}

} // namespace
