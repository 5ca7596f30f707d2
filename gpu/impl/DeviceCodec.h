/**
 * A TurboQuantizer's tables on one device (codebooks, mean, rotation, QJL
 * projection) and the encode pipeline that uses them. The CPU codec stays
 * the reference: everything here is copied from it, nothing recomputed.
 */
#pragma once

#include <cstdint>
#include <vector>

#include <faiss_turbo/TurboQuantizer.h>

#include <gpu/GpuResources.h>
#include <gpu/impl/DeviceBuffer.h>
#include <gpu/impl/kernels.h>

namespace faiss_turbo {
namespace gpu {

class DeviceCodec {
   public:
    DeviceCodec(GpuResources* res, int device, const TurboQuantizer& tq);

    /// layout and codebook pointers for the kernels
    const CodecView& view() const {
        return view_;
    }

    /** Encode n vectors already on the device into codes (device, n x
     * code_size). Throws on NaN / Inf input or a vector too long for
     * float, as the CPU does, naming the first such vector as vector
     * first + i (x: rows first.. of the caller's input); the codes are
     * then undefined. origins (device, n x d, or null): see
     * EncodeParams::origins. */
    void encode(
        size_t n,
        const float* x,
        uint8_t* codes,
        cudaStream_t s,
        const float* origins = nullptr,
        size_t first = 0);

    /// bytes of device memory held for the tables
    size_t table_bytes() const;

   private:
    /// throws for vector i of x (device), the first the encoder refused
    [[noreturn]] void throw_unencodable(
        const float* x,
        size_t i,
        size_t first,
        cudaStream_t s) const;

    GpuResources* res_;
    int device_;
    size_t d_;
    bool dense_rot_ = false;
    bool gaussian_qjl_ = false;
    CodecView view_;
    EncodeParams ep_;

    DeviceBuffer<float> cent_hi_, cent_lo_, thr_hi_, thr_lo_, mean_;
    DeviceBuffer<float> rot_signs_, qjl_signs_, dense_rot_m_, gauss_qjl_m_;
    DeviceBuffer<uint32_t> rot_perms_, qjl_perms_;
    DeviceBuffer<int> bad_flag_;
    // batch buffers of the dense path
    DeviceBuffer<float> xc_, y_, resid_, sr_;

    void upload_hadamard(
        const HadamardRotation& h,
        DeviceBuffer<float>& signs,
        DeviceBuffer<uint32_t>& perms,
        HadamardView& view);
};

/// the approximate pass's queries, host side (ApproxQueries' arrays)
struct ApproxQueryRows {
    std::vector<float> a;     ///< nq x kp: [y, f S y] / |y|, zero padded
    std::vector<float> ynorm; ///< |y|
    std::vector<float> anorm; ///< |a|, rounded up by 1e-4 relative
};

/// rows q0 .. q0 + nq - 1 of q (the CPU's prepared queries) for the pass
ApproxQueryRows approx_query_rows(
    const CodecView& c,
    const TQQueries& q,
    size_t q0,
    int nq,
    size_t d);

} // namespace gpu
} // namespace faiss_turbo
