/**
 * Marks the per-coordinate rules that the CPU and the CUDA code share, so the
 * CPU tests check what the GPU runs.
 */
#pragma once

#if defined(__CUDACC__)
#define TQ_HOST_DEVICE __host__ __device__ __forceinline__
#else
#define TQ_HOST_DEVICE inline
#endif
