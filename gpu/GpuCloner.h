/**
 * Moving TurboQuant indexes between the CPU and a GPU, like FAISS's
 * index_cpu_to_gpu / index_gpu_to_cpu. The codec is copied, not rebuilt:
 * both sides encode and score alike.
 */
#pragma once

#include <faiss/Index.h>

#include <gpu/GpuIndexTurboQuant.h>
#include <gpu/GpuResources.h>

namespace faiss_turbo {
namespace gpu {

/// a new GPU index (caller owns it) holding a copy of `index`: an
/// IndexTurboQuant (GpuIndexTurboQuant) or a trained IndexIVFTurboQuant
/// (GpuIndexIVFTurboQuant; config unused). FAISS's IndexIDMap(2),
/// IndexPreTransform and IndexRefine(Flat) around one are copied with
/// their inner index moved (a refinement index stays on the CPU, copied),
/// as FAISS's cloner does. Throws for other index types
faiss::Index* index_cpu_to_gpu(
    GpuResources* res,
    int device,
    const faiss::Index* index,
    const GpuIndexTurboQuantConfig* config = nullptr);

/// a new CPU index (caller owns it) with the GPU index's codec and codes
/// (through the same wrappers)
faiss::Index* index_gpu_to_cpu(const faiss::Index* index);

} // namespace gpu
} // namespace faiss_turbo
