/**
 * Launchers of the CUDA kernels, with plain parameter structs, so that the
 * C++ side never needs nvcc. Layouts are the CPU codec's (TurboQuantizer.h).
 *
 * Search is exact: kernels score candidates with the CPU's arithmetic (same
 * operations in the same order), so results equal IndexTurboQuant's.
 *   1. rescore a sample of the database exactly; the k-th best key T of the
 *      sample bounds the k-th best key of the whole database;
 *   2. an approximate pass (fp16 tensor cores, or fp32 CUDA cores for few
 *      queries) keeps every vector whose approximate key minus a proven
 *      error bound is <= T: a superset of the true top k;
 *   3. rescore those candidates exactly and select the top k.
 * Keys are "smaller is better": the L2 distance, or minus the inner product.
 */
#pragma once

#include <cstddef>
#include <cstdint>

#include <cuda_runtime_api.h>

namespace faiss_turbo {
namespace gpu {

/// the code layout and codebooks, device pointers
struct CodecView {
    int d = 0;
    int prod = 0;     ///< PROD variant (sign bits + gamma)
    int debiased = 0; ///< MSE with beta
    int n_hi = 0, b_hi = 0, b_lo = 0;
    int mse_bytes = 0, qjl_bytes = 0, code_size = 0;
    int n_floats = 1; ///< float32 scalars after the bits: norm, [aux], [moff]
    int has_aux = 0;  ///< aux (beta or gamma) follows the norm
    int ip_offset = 0; ///< moff = <mean, x - mean> is the last scalar
    int kc = 0; ///< d rounded up to 16: where the approximate pass's sign
                ///< part starts
    int kp = 0; ///< approximate pass's inner dimension: kc or 2 kc
    float qjl_factor = 0; ///< (float)(sqrt(pi / 2) / d), as combine() has it
    const float* cent_hi = nullptr; ///< 2^b_hi centroids
    const float* cent_lo = nullptr;
    const float* thr_hi = nullptr; ///< 2^b_hi - 1 thresholds
    const float* thr_lo = nullptr;
};

/// blocks of a HadamardRotation round: the binary decomposition of d
constexpr int kMaxHadamardBlocks = 16;

/// one HadamardRotation's parameters, device pointers
struct HadamardView {
    int nrounds = 0;
    int nblocks = 0;
    int blk_off[kMaxHadamardBlocks] = {};
    int blk_size[kMaxHadamardBlocks] = {};
    float blk_scale[kMaxHadamardBlocks] = {}; ///< (float)(1 / sqrt(size))
    const float* signs = nullptr;             ///< nrounds x d
    const uint32_t* perms = nullptr;          ///< nrounds x d
};

struct EncodeParams {
    CodecView c;
    const float* mean = nullptr; ///< d floats, or null
    /// ip_offset: n x d points the vectors are relative to (IVF residuals:
    /// their list centroids), moff = <origin, x>; null: the mean
    const float* origins = nullptr;
    bool rot_hadamard = false;   ///< rotate in the kernel (else y is given)
    HadamardView rot;
    bool qjl_hadamard = false; ///< PROD: QJL signs in the kernel (else the
                               ///< residual is written for matmul_rows)
    HadamardView qjl;
    float qjl_scale = 0; ///< sqrt((float)d): QJLProjection's factor
    size_t first = 0;    ///< x's row 0 as a row of the encode call (errors)
};

/// largest d the kernels support
constexpr int kMaxGpuDim = 4096;

/// bytes a code array needs past its last code: the decoders read whole
/// words
constexpr size_t kCodeSlack = 16;

/// x_out = x - mean for n vectors
void launch_center(
    size_t n,
    int d,
    const float* x,
    const float* mean,
    float* x_out,
    cudaStream_t s);

/** y (n x d) = rows x_i times M^T (M d x d row-major) with the CPU's
 * matmul_rows arithmetic: y_ir = dot_lanes(M_r, x_i), bit for bit. */
void launch_matmul_rows(
    size_t n, int d, const float* x, const float* m, float* y, cudaStream_t s);

/** Encode n vectors: x (n x d, device) are the input vectors; y the rotated
 * centered vectors when !rot_hadamard (else null); codes (n x code_size)
 * are fully written. PROD without qjl_hadamard writes the residuals to
 * resid (n x d) and leaves the sign bytes to launch_pack_signs. Where a
 * vector i has a NaN or an Inf, or overflows float (its norm, its rotation
 * or a float of its code), as the CPU refuses, raises *bad_flag to
 * INT_MAX - (p.first + i) (0 before: the first bad vector of the call is
 * INT_MAX - *bad_flag). */
void launch_encode(
    const EncodeParams& p,
    size_t n,
    const float* x,
    const float* y,
    uint8_t* codes,
    float* resid,
    int* bad_flag,
    cudaStream_t s);

/// sign bytes of PROD codes from sr = S r (n x d)
void launch_pack_signs(
    const CodecView& c,
    size_t n,
    const float* sr,
    uint8_t* codes,
    cudaStream_t s);

/// queries of one search chunk, for the exact scoring (device pointers)
struct ExactQueries {
    int nq = 0;
    const float* y = nullptr;      ///< nq x d, TQQueries::y
    const float* sy = nullptr;     ///< nq x d, TQQueries::sy (PROD)
    const float* qconst = nullptr; ///< nq
    bool l2 = true;
    /// IDSelector bitmap over code positions (IdFilter.h): a code whose
    /// bit is clear gets the key +inf; null: every code is kept
    const uint32_t* allow = nullptr;
};

/** Rows of candidates (one row per query, or per query and probed list):
 * row r holds count(r) entries at off(r) .. off(r) + count(r) - 1 of the
 * candidate arrays, off(r) = row_off[r] (or r * stride), count(r) =
 * min(counts[r], n) (or n when counts is null); n bounds every row.
 * pos_off: the rescoring reads the entries' code positions at
 * pos[pos_off[r] + i] instead of at the entries' slots (IVF lists). */
struct CandidateRows {
    int nrows = 0;
    const int64_t* row_off = nullptr;
    size_t stride = 0;
    const int* counts = nullptr;
    int n = 0;
    const int64_t* pos_off = nullptr;
};

/** Exact keys of candidates, row r scored with query row r of q. pos: the
 * codes' positions in the code array (null: the sample pos(i) = i ntotal /
 * n). labels: the label of each position (null: the position). Writes the
 * keys and the labels (as int) at the candidates' slots. */
void launch_rescore(
    const CodecView& c,
    const uint8_t* codes,
    size_t ntotal,
    const ExactQueries& q,
    const CandidateRows& rows,
    const int* pos,
    const int64_t* labels,
    float* keys_out,
    int* ids_out,
    cudaStream_t s);

/** IVF: the probed lists of a chunk as items, each one list and up to
 * kListQueries of the rows (query, list) of q that probe it; item i reads
 * list slots pos[pos_off[i]] .. + count[i] - 1 and writes row r's keys at
 * its slots in `rows` (CandidateRows::row_off). */
constexpr int kListQueries = 8;
struct ListItems {
    int nitems = 0;
    const int64_t* pos_off = nullptr; ///< nitems
    const int* count = nullptr;       ///< nitems
    const int* rows = nullptr;        ///< nitems x kListQueries, -1: none
    int n = 0;                        ///< the longest list
};

/// rows per item that launch_rescore_lists can stage (1..kListQueries)
int list_queries_per_item(const CodecView& c);

/** Exact keys of every code of each item's list for each of its rows: what
 * launch_rescore gives those rows, bit for bit, with each code decoded
 * once per item. ng: the most rows an item has (at most
 * list_queries_per_item); labels: the label of each position. */
void launch_rescore_lists(
    const CodecView& c,
    const uint8_t* codes,
    const ExactQueries& q,
    const CandidateRows& rows,
    const ListItems& items,
    int ng,
    const int* pos,
    const int64_t* labels,
    float* keys_out,
    int* ids_out,
    cudaStream_t s);

/// queries of one chunk for the approximate pass
struct ApproxQueries {
    int nq = 0;
    const float* a = nullptr; ///< nq x kp: [y, f S y] / |y|
    const float* qconst = nullptr;
    const float* ynorm = nullptr;  ///< |y|
    const float* anorm = nullptr;  ///< |a| (1, or more for PROD)
    const float* thresh = nullptr; ///< T of query q at thresh[q * t_stride]
    int t_stride = 0;
    bool l2 = true;
    float rel = 0; ///< error model: |dot - a.b| <= rel |a||b| + abs (|a|+|b|)
    float abs = 0;
};

struct CandidateLists {
    int* ids = nullptr;    ///< nq x capacity
    int* counts = nullptr; ///< nq, counts past capacity are still counted
    int capacity = 0;
    /// IDSelector bitmap over code positions (IdFilter.h): codes whose bit
    /// is clear are never candidates; null: every code may be
    const uint32_t* allow = nullptr;
};

/// queries one tensor-core launch takes for this codec (0: none fit)
int approx_tc_max_queries(const CodecView& c);

/// queries one launch of the 4-bit tensor-core pass (scan_tc4.cu) takes
/// for this codec; 0: the codec is not one it scans
int tc4_max_queries(const CodecView& c);

/// queries one launch of the generic tensor-core pass takes (0: none fit)
int generic_tc_max_queries(const CodecView& c);

/// one approximate pass: the codes, the queries, where the candidates go,
/// and the launch's SMs and stream
struct ScanArgs {
    CodecView c;
    const uint8_t* codes = nullptr;
    size_t ntotal = 0;
    ApproxQueries q;
    CandidateLists out;
    int num_sms = 1;
    cudaStream_t stream = nullptr;
};

/// the 4-bit tensor-core pass (launch_scan_approx chooses it)
void launch_scan_tc4(const ScanArgs& a);

/// queries one CUDA-core launch takes for this codec
int approx_simt_max_queries(const CodecView& c);

/// error model constants of the two approximate passes
void approx_error_model(const CodecView& c, bool tc, float* rel, float* abs);

/// allow_tc4 = false: never the 4-bit pass (to compare it in benchmarks)
void launch_scan_approx(
    bool tensor_cores,
    const ScanArgs& a,
    bool allow_tc4 = true);

/// largest k of launch_select_k, and of its warp path
constexpr int kMaxSelectK = 2048;
constexpr int kWarpSelectMaxK = 128;

/// k-selection algorithm: Warp (k <= 128) keeps per-warp lists in
/// registers, Block sorts in shared memory; Auto takes Warp when k allows
enum class SelectPath { Auto, Warp, Block };

/** Per row r, segment g < nseg: the k smallest (key, id) pairs, sorted,
 * of the row's entries [g * seg_len, min(count(r), (g + 1) * seg_len)).
 * Equal keys go by the smaller id first, or by the larger if
 * larger_id_first (the CPU's inner-product heaps). ids null: id = position
 * in the row; an id < 0 is no entry. NaN keys count as +inf, -0 as +0.
 * Output at (r * nseg + g) * k, padded with (+inf, -1). Both paths give
 * the same output. */
void launch_select_k(
    const float* keys,
    const int* ids,
    const CandidateRows& rows,
    int nseg,
    int seg_len,
    int k,
    float* out_keys,
    int* out_ids,
    cudaStream_t s,
    bool larger_id_first = false,
    SelectPath path = SelectPath::Auto);

/// dst row i = src row keep[i], rows of `row_bytes`
void launch_gather_rows(
    const uint8_t* src,
    const int64_t* keep,
    size_t n,
    size_t row_bytes,
    uint8_t* dst,
    cudaStream_t s);

} // namespace gpu
} // namespace faiss_turbo
