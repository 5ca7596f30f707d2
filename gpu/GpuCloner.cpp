#include <gpu/GpuCloner.h>

#include <faiss/impl/FaissAssert.h>

#include <faiss_turbo/IndexIVFTurboQuant.h>
#include <faiss_turbo/IndexTurboQuant.h>
#include <faiss_turbo/IndexTurboQuantFastScan.h>

#include <gpu/GpuIndexIVFTurboQuant.h>

namespace faiss_turbo {
namespace gpu {

faiss::Index* index_cpu_to_gpu(
    GpuResources* res,
    int device,
    const faiss::Index* index,
    const GpuIndexTurboQuantConfig* config) {
    FAISS_THROW_IF_NOT_MSG(index, "index_cpu_to_gpu: null index");
    GpuIndexTurboQuantConfig cfg =
        config ? *config : GpuIndexTurboQuantConfig();
    cfg.device = device;
    if (auto tq = dynamic_cast<const IndexTurboQuant*>(index)) {
        return new GpuIndexTurboQuant(res, *tq, cfg);
    }
    if (auto fs = dynamic_cast<const IndexTurboQuantFastScan*>(index)) {
        // the GPU keeps row codes: the same codes, in a flat index's layout
        IndexTurboQuant flat;
        fs->copy_to(&flat);
        return new GpuIndexTurboQuant(res, flat, cfg);
    }
    if (auto ivf = dynamic_cast<const IndexIVFTurboQuant*>(index)) {
        return new GpuIndexIVFTurboQuant(res, *ivf, device);
    }
    FAISS_THROW_MSG(
        "index_cpu_to_gpu: only IndexTurboQuant(FastScan) and "
        "IndexIVFTurboQuant have GPU versions");
}

faiss::Index* index_gpu_to_cpu(const faiss::Index* index) {
    FAISS_THROW_IF_NOT_MSG(index, "index_gpu_to_cpu: null index");
    if (auto g = dynamic_cast<const GpuIndexTurboQuant*>(index)) {
        auto* cpu = new IndexTurboQuant();
        try {
            g->copyTo(cpu);
        } catch (...) {
            delete cpu;
            throw;
        }
        return cpu;
    }
    if (auto g = dynamic_cast<const GpuIndexIVFTurboQuant*>(index)) {
        return g->toCpu();
    }
    FAISS_THROW_MSG("index_gpu_to_cpu: not a GPU TurboQuant index");
}

} // namespace gpu
} // namespace faiss_turbo
