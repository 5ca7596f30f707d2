/**
 * The codes of the fast-scan layout (IndexTurboQuantFastScan): each code's
 * MSE bit stream transposed into blocks of kLutBlockCodes codes (the layout
 * of simd/lut_kernels.h), and its floats (norm, beta, moff) in one array
 * per field, so that a block's scores are computed in vectorizable loops.
 * This is the index's only copy of the codes: TurboQuantizer's row layout
 * is rebuilt on demand, one code (code(): files, reconstruct, the exact
 * re-scoring of candidates) or a range (rows(): the int8 scan's tiles).
 */
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <vector>

#include <faiss_turbo/TurboQuantizer.h>
#include <faiss_turbo/impl/simd/lut_kernels.h>

namespace faiss_turbo {

/// capacity for n elements, grown geometrically as resize() would (adds
/// one at a time stay linear); the growth of the blocks, their floats and
/// the lists' ids, reserved before anything changes
template <class T> void grow_capacity(std::vector<T>& v, size_t n) {
    if (n > v.capacity()) {
        v.reserve(std::max(n, 2 * v.capacity()));
    }
}

struct BlockedCodes {
    size_t ntotal = 0;
    size_t ngroups = 0;          ///< groups per block: the codec's mse_bytes
    size_t code_size = 0;        ///< the codec's row code size
    bool has_aux = false;        ///< aux (beta) stored
    bool has_moff = false;       ///< moff stored (ip_offset codecs)
    bool has_cc = false;         ///< ||c_hat||^2 kept (plain MSE: derived, not
                                 ///< in files or in the row codes)
    std::vector<uint8_t> blocks; ///< ceil(ntotal / 32) blocks, zero padded
    std::vector<float> norm, aux, moff, cc; ///< ntotal each (when kept)

    /// layout of this codec's codes (empties the storage)
    void set_codec(const TurboQuantizer& tq);

    size_t block_bytes() const {
        return ngroups * kLutGroupBytes;
    }

    size_t nblocks() const {
        return (ntotal + kLutBlockCodes - 1) / kLutBlockCodes;
    }

    /// append n row codes (TurboQuantizer layout)
    void append(const TurboQuantizer& tq, size_t n, const uint8_t* codes);

    /// replace codes [i0, i0 + n) by n row codes
    void
    update(const TurboQuantizer& tq, size_t i0, size_t n, const uint8_t* codes);

    /// keep the first n codes (the rest of the last block is zeroed), or
    /// grow with all-zero codes
    void resize(size_t n);

    /// memory for n codes, so that growing to n allocates nothing; with
    /// tq, append()'s scratch for c_hat too, on the calling thread: up to n
    /// codes then append without allocating (IndexIVFTurboQuant's add)
    void reserve(size_t n, const TurboQuantizer* tq = nullptr);

    /// row code i (code_size bytes) into out
    void code(const TurboQuantizer& tq, size_t i, uint8_t* out) const;

    /// row codes [i0, i0 + n) into out (n x code_size bytes): whole blocks
    /// are transposed 16 codes at a time (the int8 scan's tiles)
    void
    rows(const TurboQuantizer& tq, size_t i0, size_t n, uint8_t* out) const;

    /// the scalars of code i as TurboQuantizer::combine reads them
    TQCodeScalars scalars(size_t i) const {
        TQCodeScalars s;
        s.norm = norm[i];
        s.aux = has_aux ? aux[i] : 0;
        s.moff = has_moff ? moff[i] : 0;
        s.cc = has_cc ? cc[i] : 0;
        return s;
    }

    /// keep the codes with keep[i], in order; returns how many were removed
    size_t compact(const std::vector<bool>& keep);

    void clear();

    /// memory held, in bytes
    size_t bytes() const;

   private:
    void check_codec(const TurboQuantizer& tq) const;

    /// row code c at position i (< ntotal); chat: scratch
    void
    put(const TurboQuantizer& tq,
        size_t i,
        const uint8_t* c,
        std::vector<float>& chat);
};

/** The scalars of codes i0, i0 + 1, ... as the affine form of the codec
 * (DEBIASED, L2, MOFF: TurboQuantizer::with_form and has_moff) reads them:
 * only those fields are loaded, so loops over the codes vectorize. */
template <bool DEBIASED, bool L2, bool MOFF> struct BlockedScalars {
    const float *norm, *aux, *cc, *moff;

    BlockedScalars(const BlockedCodes& c, size_t i0)
        : norm(c.norm.data() + i0),
          aux(DEBIASED ? c.aux.data() + i0 : nullptr),
          cc(!DEBIASED && L2 ? c.cc.data() + i0 : nullptr),
          moff(MOFF ? c.moff.data() + i0 : nullptr) {}

    TQCodeScalars operator[](size_t i) const {
        TQCodeScalars s;
        s.norm = norm[i];
        s.aux = DEBIASED ? aux[i] : 0;
        s.cc = !DEBIASED && L2 ? cc[i] : 0;
        s.moff = MOFF ? moff[i] : 0;
        return s;
    }
};

/// the MSE bytes of one row code into slot position pos of the blocks
void pack_block_code(
        const uint8_t* mse, size_t ngroups, size_t pos, uint8_t* blocks);

/// the MSE bytes of the code at position pos of the blocks
void unpack_block_code(
        const uint8_t* blocks, size_t ngroups, size_t pos, uint8_t* mse);

} // namespace faiss_turbo
