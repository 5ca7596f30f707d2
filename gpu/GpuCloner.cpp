#include <gpu/GpuCloner.h>

#include <functional>
#include <memory>

#include <faiss/IndexIDMap.h>
#include <faiss/IndexPreTransform.h>
#include <faiss/IndexRefine.h>
#include <faiss/VectorTransform.h>
#include <faiss/clone_index.h>
#include <faiss/impl/FaissAssert.h>
#include <faiss/impl/io.h>
#include <faiss/index_io.h>

#include <faiss_turbo/IndexIVFTurboQuant.h>
#include <faiss_turbo/IndexTurboQuant.h>
#include <faiss_turbo/IndexTurboQuantFastScan.h>
#include <faiss_turbo/index_io.h>

#include <gpu/GpuIndexIVFTurboQuant.h>

namespace faiss_turbo {
namespace gpu {

namespace {

using MoveFn = std::function<faiss::Index*(const faiss::Index*)>;

/// dst gets src's faiss::Index fields (a wrapper's, around a moved index)
void copy_index_fields(const faiss::Index& src, faiss::Index& dst) {
    dst.d = src.d;
    dst.ntotal = src.ntotal;
    dst.verbose = src.verbose;
    dst.is_trained = src.is_trained;
    dst.metric_type = src.metric_type;
    dst.metric_arg = src.metric_arg;
}

/// IndexIDMap / IndexIDMap2 around move(its index), with its ids. Built
/// field by field: FAISS's constructors want an empty sub-index
template <class IDMap>
faiss::Index* clone_id_map(const IDMap& src, const MoveFn& move) {
    std::unique_ptr<faiss::Index> inner(move(src.index));
    std::unique_ptr<IDMap> w(new IDMap());
    copy_index_fields(src, *w);
    w->id_map = src.id_map;
    w->index = inner.release();
    w->own_fields = true;
    return w.release();
}

/// a copy of vt through FAISS's I/O, which writes every transform type
/// (FAISS 1.7.3's Cloner refuses L2 normalization and ITQ)
faiss::VectorTransform* clone_transform(const faiss::VectorTransform* vt) {
    faiss::VectorIOWriter w;
    faiss::write_VectorTransform(vt, &w);
    faiss::VectorIOReader r;
    r.data = std::move(w.data);
    return faiss::read_VectorTransform(&r);
}

/// IndexPreTransform around move(its index), its transforms copied
faiss::Index* clone_pretransform(
        const faiss::IndexPreTransform& src,
        const MoveFn& move) {
    std::unique_ptr<faiss::IndexPreTransform> w(new faiss::IndexPreTransform());
    w->own_fields = true; // from here, w deletes what it holds
    w->index = move(src.index);
    for (const faiss::VectorTransform* vt : src.chain) {
        w->chain.push_back(clone_transform(vt));
    }
    copy_index_fields(src, *w);
    return w.release();
}

/// IndexRefine(Flat) with base move(its base) and a CPU copy of its
/// refinement index (the exact vectors stay on the host)
faiss::Index* clone_refine(const faiss::IndexRefine& src, const MoveFn& move) {
    std::unique_ptr<faiss::IndexRefine> w(
            dynamic_cast<const faiss::IndexRefineFlat*>(&src)
                    ? new faiss::IndexRefineFlat()
                    : new faiss::IndexRefine());
    w->own_fields = w->own_refine_index = true;
    w->base_index = move(src.base_index);
    w->refine_index = faiss_turbo::clone_index(src.refine_index);
    w->k_factor = src.k_factor;
    copy_index_fields(src, *w);
    return w.release();
}

/// FAISS's wrappers that the cloners go through, as FAISS's own cloners
/// do: IndexIDMap(2), IndexPreTransform, IndexRefine(Flat), their inner
/// index moved by `move` (recursively). Null: not one of them
faiss::Index* clone_wrapper(const faiss::Index* index, const MoveFn& move) {
    if (auto m2 = dynamic_cast<const faiss::IndexIDMap2*>(index)) {
        std::unique_ptr<faiss::IndexIDMap2> w(
                static_cast<faiss::IndexIDMap2*>(clone_id_map(*m2, move)));
        w->construct_rev_map();
        return w.release();
    }
    if (auto m = dynamic_cast<const faiss::IndexIDMap*>(index)) {
        return clone_id_map(*m, move);
    }
    if (auto pt = dynamic_cast<const faiss::IndexPreTransform*>(index)) {
        return clone_pretransform(*pt, move);
    }
    if (auto r = dynamic_cast<const faiss::IndexRefine*>(index)) {
        return clone_refine(*r, move);
    }
    return nullptr;
}

} // namespace

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
    auto move = [&](const faiss::Index* inner) {
        return index_cpu_to_gpu(res, device, inner, &cfg);
    };
    if (faiss::Index* w = clone_wrapper(index, move)) {
        return w;
    }
    FAISS_THROW_MSG(
        "index_cpu_to_gpu: only IndexTurboQuant(FastScan) and "
        "IndexIVFTurboQuant have GPU versions (also inside IndexIDMap(2), "
        "IndexPreTransform or IndexRefine(Flat))");
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
    auto move = [](const faiss::Index* inner) {
        return index_gpu_to_cpu(inner);
    };
    if (faiss::Index* w = clone_wrapper(index, move)) {
        return w;
    }
    FAISS_THROW_MSG(
        "index_gpu_to_cpu: not a GPU TurboQuant index (nor one inside "
        "IndexIDMap(2), IndexPreTransform or IndexRefine(Flat))");
}

} // namespace gpu
} // namespace faiss_turbo
