/**
 * The inline PTX of the approximate passes (sm_80 and later): ldmatrix and
 * mma.sync m16n8k16 with fp16 inputs and fp32 accumulation, in the PTX
 * ISA's fragment layouts, and shared-memory loads at 32-bit addresses.
 * Under the CPU emulation of the kernels (tests/emulation) they call its
 * emulations.
 */
#pragma once

#include <cstdint>
#include <cstring>

#include <cuda_fp16.h>

namespace faiss_turbo {
namespace gpu {

#ifdef TQ_CUDA_EMULATION

inline void ldmatrix_x4(uint32_t r[4], const void* p) {
    emu_ldmatrix_x4(r, p);
}

inline void
mma_16816(float d[4], const uint32_t a[4], uint32_t b0, uint32_t b1) {
    emu_mma_16816(d, a, b0, b1);
}

/// d = a b (no accumulator to read)
inline void
mma_16816_zc(float d[4], const uint32_t a[4], uint32_t b0, uint32_t b1) {
    d[0] = d[1] = d[2] = d[3] = 0;
    emu_mma_16816(d, a, b0, b1);
}

using SharedAddr = const uint8_t*;

inline SharedAddr shared_addr(const void* p) {
    return (SharedAddr)p;
}

inline uint32_t ld_shared_u32(SharedAddr a) {
    uint32_t v;
    memcpy(&v, a, 4);
    return v;
}

#else

__device__ __forceinline__ uint32_t smem_addr(const void* p) {
    return (uint32_t)__cvta_generic_to_shared(p);
}

/// four 8x8 b16 matrices; lanes 8i .. 8i + 7 give the rows of matrix i
__device__ __forceinline__ void ldmatrix_x4(uint32_t r[4], const void* p) {
    asm volatile(
        "ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
        : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
        : "r"(smem_addr(p)));
}

/// a shared-memory byte address: offsets add to it in one instruction
using SharedAddr = uint32_t;

__device__ __forceinline__ SharedAddr shared_addr(const void* p) {
    return smem_addr(p);
}

__device__ __forceinline__ uint32_t ld_shared_u32(SharedAddr a) {
    uint32_t v;
    asm("ld.shared.u32 %0, [%1];\n" : "=r"(v) : "r"(a));
    return v;
}

/// d += a (16x16, row) b (16x8, col)
__device__ __forceinline__ void
mma_16816(float d[4], const uint32_t a[4], uint32_t b0, uint32_t b1) {
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 "
        "{%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

/// d = a b: the first product of an accumulation, without zeroing d first
__device__ __forceinline__ void
mma_16816_zc(float d[4], const uint32_t a[4], uint32_t b0, uint32_t b1) {
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 "
        "{%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%10,%10,%10,%10};\n"
        : "=f"(d[0]), "=f"(d[1]), "=f"(d[2]), "=f"(d[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1),
          "f"(0.0f));
}

#endif

/// two floats as fp16 (round to nearest), a in the low half
__device__ __forceinline__ uint32_t pack_half2(float a, float b) {
    __half2 h = __floats2half2_rn(a, b);
    return *(uint32_t*)&h;
}

} // namespace gpu
} // namespace faiss_turbo
