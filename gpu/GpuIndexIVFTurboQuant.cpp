#include <gpu/GpuIndexIVFTurboQuant.h>

#include <algorithm>
#include <climits>
#include <cstring>
#include <limits>

#include <faiss/IndexFlat.h>
#include <faiss/clone_index.h>
#include <faiss/impl/FaissAssert.h>
#include <faiss/invlists/InvertedLists.h>

#include <faiss_turbo/impl/blocked_invlists.h>
#include <faiss_turbo/impl/coord_rules.h>
#include <faiss_turbo/impl/ivf_scanner.h>
#include <faiss_turbo/impl/kernels.h>

#include <gpu/impl/CudaUtils.h>
#include <gpu/impl/DeviceCodec.h>
#include <gpu/impl/HostStaging.h>
#include <gpu/impl/IdFilter.h>
#include <gpu/impl/kernels.h>

namespace faiss_turbo {
namespace gpu {

namespace {

constexpr size_t kMaxChunkCandidates = size_t(1) << 26; // per search chunk
constexpr size_t kMaxChunkRowFloats = size_t(1) << 24;  // prepared queries
/// vectors an add assigns and encodes at a time (as IndexIVF's add_core);
/// the CPU emulation of the kernels takes small batches, so that its tests
/// run adds of several
#ifdef TQ_CUDA_EMULATION
constexpr idx_t kAddBatch = 256;
#else
constexpr idx_t kAddBatch = 65536;
#endif

template <typename T>
void to_device(T* dst, const T* src, size_t n, cudaStream_t s) {
    if (n > 0) {
        TQ_CUDA_CHECK(cudaMemcpyAsync(
            dst, src, n * sizeof(T), cudaMemcpyHostToDevice, s));
    }
}

template <typename T>
void to_host(T* dst, const T* src, size_t n, cudaStream_t s) {
    if (n > 0) {
        TQ_CUDA_CHECK(cudaMemcpyAsync(
            dst, src, n * sizeof(T), cudaMemcpyDeviceToHost, s));
    }
    TQ_CUDA_CHECK(cudaStreamSynchronize(s));
}

void check_label(idx_t id) {
    FAISS_THROW_IF_NOT_FMT(
        id >= 0 && id < INT_MAX,
        "GpuIndexIVFTurboQuant keeps ids in [0, 2^31 - 1), not %ld",
        (long)id);
}

} // namespace

struct GpuIndexIVFTurboQuant::Scratch {
    DeviceBuffer<float> y, sy, qc, keys, out_keys;
    DeviceBuffer<int64_t> row_off, q_off, it_pos_off;
    DeviceBuffer<int> q_cnt, ids, out_ids, it_count, it_rows;
    DeviceBuffer<uint32_t> allow;

    Scratch(GpuResources* r, int dev)
        : y(r, dev, "IVF search queries"),
          sy(r, dev, "IVF search queries"),
          qc(r, dev, "IVF search queries"),
          keys(r, dev, "IVF search keys"),
          out_keys(r, dev, "IVF search results"),
          row_off(r, dev, "IVF search rows"),
          q_off(r, dev, "IVF search rows"),
          it_pos_off(r, dev, "IVF search lists"),
          q_cnt(r, dev, "IVF search rows"),
          ids(r, dev, "IVF search ids"),
          out_ids(r, dev, "IVF search results"),
          it_count(r, dev, "IVF search lists"),
          it_rows(r, dev, "IVF search lists"),
          allow(r, dev, "IVF search selector") {}

    size_t bytes() const {
        return 4 * (y.capacity() + sy.capacity() + qc.capacity() +
                    keys.capacity() + out_keys.capacity() + q_cnt.capacity() + ids.capacity() + out_ids.capacity() +
                    it_count.capacity() + it_rows.capacity() +
                    allow.capacity()) +
               8 * (row_off.capacity() + q_off.capacity() +
                    it_pos_off.capacity());
    }
};

GpuIndexIVFTurboQuant::GpuIndexIVFTurboQuant(
    GpuResources* res, int device, idx_t dim, faiss::MetricType metric)
    : faiss::Index(dim, metric),
      res_(res),
      device_(device),
      codes_(res, device, "IVF TurboQuant codes"),
      labels_(res, device, "IVF TurboQuant ids"),
      perm_(res, device, "IVF TurboQuant lists") {
    FAISS_THROW_IF_NOT_MSG(res, "GpuIndexIVFTurboQuant: null GpuResources");
    // before any work (train() would run k-means first)
    FAISS_THROW_IF_NOT_FMT(
        dim > 0 && dim <= kMaxGpuDim,
        "GpuIndexIVFTurboQuant: GPU TurboQuant supports d <= %d, not d=%ld",
        kMaxGpuDim,
        (long)dim);
    checkDevice(device);
    scratch_.reset(new Scratch(res, device));
}

GpuIndexIVFTurboQuant::GpuIndexIVFTurboQuant(
    GpuResources* res, const IndexIVFTurboQuant& cpu, int device)
    : GpuIndexIVFTurboQuant(res, device, cpu.d, cpu.metric_type) {
    copyFrom(cpu);
}

GpuIndexIVFTurboQuant::GpuIndexIVFTurboQuant(
    GpuResources* res,
    idx_t dim,
    size_t nl,
    float bits,
    TQVariant variant,
    faiss::MetricType metric,
    bool by_residual,
    bool centered,
    bool debiased,
    RotationType rotation_type,
    QJLType qjl_type,
    uint64_t seed,
    int device)
    : GpuIndexIVFTurboQuant(res, device, dim, metric) {
    FAISS_THROW_IF_NOT_FMT(
        metric == faiss::METRIC_L2 || metric == faiss::METRIC_INNER_PRODUCT,
        "GpuIndexIVFTurboQuant: metric %d is neither L2 nor inner product",
        (int)metric);
    std::unique_ptr<faiss::Index> q(
        metric == faiss::METRIC_L2
            ? (faiss::Index*)new faiss::IndexFlatL2(dim)
            : (faiss::Index*)new faiss::IndexFlatIP(dim));
    // the CPU constructor checks the parameters (nlist, bits, variant)
    IndexIVFTurboQuant cpu(
        q.get(),
        dim,
        nl,
        bits,
        variant,
        metric,
        by_residual,
        centered,
        debiased,
        rotation_type,
        qjl_type,
        seed);
    std::unique_ptr<faiss::Index> coarse(faiss::clone_index(cpu.quantizer));
    TurboQuantizer tq = cpu.tq;
    set_parameters(cpu, std::move(coarse), std::move(tq));
    lists_.assign(nlist, {});
}

GpuIndexIVFTurboQuant::~GpuIndexIVFTurboQuant() {}

cudaStream_t GpuIndexIVFTurboQuant::stream() const {
    return res_->getStream(device_);
}

void GpuIndexIVFTurboQuant::set_parameters(
    const IndexIVFTurboQuant& cpu,
    std::unique_ptr<faiss::Index> coarse,
    TurboQuantizer&& tq) noexcept {
    d = cpu.d;
    metric_type = cpu.metric_type;
    metric_arg = cpu.metric_arg;
    nlist = cpu.nlist;
    nprobe = cpu.nprobe;
    max_codes = cpu.max_codes;
    tq_ = std::move(tq);
    by_residual_ = cpu.by_residual;
    centered_ = cpu.centered;
    search_defaults_ = cpu.search_defaults;
    coarse_ = std::move(coarse);
    rc_.clear();
    src_.clear();
    dcodec_.reset();
    codes_.release();
    labels_.release();
    lists_.clear();
    host_labels_.clear();
    list_off_.clear();
    ntotal = 0;
    is_trained = false;
}

void GpuIndexIVFTurboQuant::copyFrom(const IndexIVFTurboQuant& cpu) {
    FAISS_THROW_IF_NOT_MSG(
        cpu.is_trained && cpu.quantizer && cpu.invlists,
        "GpuIndexIVFTurboQuant: copy a trained IndexIVFTurboQuant");
    FAISS_THROW_IF_NOT_FMT(
        cpu.quantizer->ntotal == (idx_t)cpu.nlist,
        "GpuIndexIVFTurboQuant: the coarse quantizer holds %ld centroids, "
        "not nlist=%zd",
        (long)cpu.quantizer->ntotal,
        cpu.nlist);
    FAISS_THROW_IF_NOT_FMT(
        cpu.d <= kMaxGpuDim,
        "GpuIndexIVFTurboQuant: GPU TurboQuant supports d <= %d, not d=%ld",
        kMaxGpuDim,
        (long)cpu.d);
    // everything is made aside, then moved in: a failure (a quantizer
    // FAISS cannot clone, an id out of range, out of memory) leaves the
    // index as it was
    DeviceScope scope(device_);
    std::unique_ptr<faiss::Index> coarse(faiss::clone_index(cpu.quantizer));
    std::shared_ptr<const IVFCentroidTable> table;
    if (cpu.by_residual) {
        table = build_ivf_centroid_table(cpu.tq, *cpu.quantizer, cpu.nlist);
    }
    std::unique_ptr<DeviceCodec> dcodec(new DeviceCodec(res_, device_, cpu.tq));
    Lists next = read_lists(cpu);
    DeviceBuffer<uint8_t> codes(res_, device_, "IVF TurboQuant codes");
    DeviceBuffer<int64_t> labels(res_, device_, "IVF TurboQuant ids");
    const size_t total = next.labels.size();
    codes.reserve_discard(std::max<size_t>(next.codes.size(), 1), kCodeSlack);
    labels.reserve_discard(std::max<size_t>(total, 1));
    to_device(codes.data(), next.codes.data(), next.codes.size(), stream());
    to_device(labels.data(), next.labels.data(), total, stream());
    std::vector<int64_t> list_off;
    DeviceBuffer<int> perm(res_, device_, "IVF TurboQuant lists");
    upload_perm(next.lists, list_off, perm);
    std::vector<float> rc, src;
    if (table) {
        rc = table->rc;
        src = table->src;
    }
    TurboQuantizer tq = cpu.tq;
    // nothing below throws
    set_parameters(cpu, std::move(coarse), std::move(tq));
    rc_.swap(rc);
    src_.swap(src);
    dcodec_ = std::move(dcodec);
    codes_ = std::move(codes);
    labels_ = std::move(labels);
    perm_ = std::move(perm);
    list_off_.swap(list_off);
    lists_.swap(next.lists);
    host_labels_.swap(next.labels);
    ntotal = total;
    is_trained = true;
}

GpuIndexIVFTurboQuant::Lists GpuIndexIVFTurboQuant::read_lists(
    const IndexIVFTurboQuant& cpu) {
    const size_t cs = cpu.tq.code_size;
    size_t total = 0;
    for (size_t l = 0; l < cpu.nlist; l++) {
        total += cpu.invlists->list_size(l);
    }
    FAISS_THROW_IF_NOT_FMT(
        total < INT_MAX,
        "GpuIndexIVFTurboQuant holds fewer than 2^31 - 1 vectors, not %zd",
        total);
    Lists r;
    r.codes.resize(total * cs);
    r.labels.resize(total);
    r.lists.resize(cpu.nlist);
    size_t pos = 0;
    for (size_t l = 0; l < cpu.nlist; l++) {
        size_t n = cpu.invlists->list_size(l);
        if (n == 0) {
            continue;
        }
        ListRows lc(*cpu.invlists, l); // row codes, also of blocked lists
        faiss::InvertedLists::ScopedIds li(cpu.invlists, l);
        memcpy(r.codes.data() + pos * cs, lc.get(), n * cs);
        for (size_t i = 0; i < n; i++) {
            check_label(li[i]);
            r.labels[pos + i] = li[i];
            r.lists[l].push_back((int)(pos + i));
        }
        pos += n;
    }
    return r;
}

std::unique_ptr<IndexIVFTurboQuant> GpuIndexIVFTurboQuant::cpu_shell() const {
    std::unique_ptr<faiss::Index> q(faiss::clone_index(coarse_.get()));
    std::unique_ptr<IndexIVFTurboQuant> cpu(new IndexIVFTurboQuant(
        q.get(),
        d,
        nlist,
        tq_.bits,
        tq_.variant,
        metric_type,
        by_residual_,
        centered_,
        tq_.debiased,
        tq_.rotation_type,
        tq_.qjl_type,
        tq_.seed));
    cpu->own_fields = true;
    q.release();
    cpu->tq = tq_;
    if (cpu->code_size != tq_.code_size) {
        // inner-product residual codes of files older than ip_offset
        cpu->code_size = tq_.code_size;
        cpu->replace_invlists(
            new faiss::ArrayInvertedLists(nlist, tq_.code_size), true);
    }
    cpu->search_defaults = search_defaults_;
    cpu->nprobe = nprobe;
    cpu->max_codes = max_codes;
    return cpu;
}

IndexIVFTurboQuant* GpuIndexIVFTurboQuant::toCpu() const {
    FAISS_THROW_IF_NOT_MSG(
        is_trained, "GpuIndexIVFTurboQuant::toCpu: index not trained");
    std::unique_ptr<IndexIVFTurboQuant> cpu = cpu_shell();
    cpu->is_trained = true;
    const size_t cs = tq_.code_size;
    std::vector<uint8_t> codes(ntotal * cs);
    DeviceScope scope(device_);
    to_host(codes.data(), codes_.data(), codes.size(), stream());
    std::vector<uint8_t> buf;
    std::vector<idx_t> ids;
    for (size_t l = 0; l < nlist; l++) {
        const auto& pl = lists_[l];
        buf.resize(pl.size() * cs);
        ids.resize(pl.size());
        for (size_t i = 0; i < pl.size(); i++) {
            memcpy(buf.data() + i * cs, codes.data() + pl[i] * cs, cs);
            ids[i] = host_labels_[pl[i]];
        }
        if (!pl.empty()) {
            cpu->invlists->add_entries(l, pl.size(), ids.data(), buf.data());
        }
    }
    cpu->ntotal = ntotal;
    return cpu.release();
}

void GpuIndexIVFTurboQuant::upload_perm(
    const std::vector<std::vector<int>>& lists,
    std::vector<int64_t>& list_off,
    DeviceBuffer<int>& perm) const {
    list_off.assign(lists.size() + 1, 0);
    std::vector<int> host;
    for (size_t l = 0; l < lists.size(); l++) {
        list_off[l] = host.size();
        host.insert(host.end(), lists[l].begin(), lists[l].end());
    }
    list_off[lists.size()] = host.size();
    perm.reserve_discard(std::max<size_t>(host.size(), 1));
    to_device(perm.data(), host.data(), host.size(), stream());
    TQ_CUDA_CHECK(cudaStreamSynchronize(stream()));
}

void GpuIndexIVFTurboQuant::rebuild_perm() {
    // list_off_ changes only once perm_ holds the new order
    std::vector<int64_t> list_off;
    upload_perm(lists_, list_off, perm_);
    list_off_.swap(list_off);
}

size_t GpuIndexIVFTurboQuant::list_size(size_t l) const {
    FAISS_THROW_IF_NOT_FMT(l < nlist, "list %zd out of range", l);
    return lists_[l].size();
}

void GpuIndexIVFTurboQuant::train(idx_t n, const float* x_in) {
    FAISS_THROW_IF_NOT_FMT(n >= 0, "train: n=%ld < 0", (long)n);
    FAISS_THROW_IF_NOT_MSG(
        ntotal == 0,
        "GpuIndexIVFTurboQuant::train: the index must be empty (the codes "
        "depend on the centroids and the mean)");
    DeviceScope scope(device_);
    HostInput<float> xh(x_in, n * d);
    std::unique_ptr<IndexIVFTurboQuant> cpu = cpu_shell();
    cpu->train(n, xh.get());
    copyFrom(*cpu);
}

void GpuIndexIVFTurboQuant::add(idx_t n, const float* x) {
    std::vector<idx_t> ids(std::max<idx_t>(n, 0));
    for (idx_t i = 0; i < n; i++) {
        ids[i] = ntotal + i;
    }
    add_with_ids(n, x, ids.data());
}

void GpuIndexIVFTurboQuant::add_with_ids(
    idx_t n, const float* x_in, const idx_t* xids_in) {
    FAISS_THROW_IF_NOT_FMT(n >= 0, "add: n=%ld < 0", (long)n);
    FAISS_THROW_IF_NOT_MSG(xids_in, "add_with_ids: null ids");
    FAISS_THROW_IF_NOT_MSG(
        is_trained, "GpuIndexIVFTurboQuant::add: index not trained");
    // vectors are assigned to lists on the host
    DeviceScope scope(device_);
    HostInput<float> xh(x_in, n * d);
    HostInput<idx_t> ih(xids_in, n);
    const float* x = xh.get();
    const idx_t* xids = ih.get();
    for (idx_t i = 0; i < n; i++) {
        check_label(xids[i]);
    }
    // before the coarse quantizer, which assigns a NaN no valid list; with
    // L2, its floats must also hold the squared norms (NaN / Inf included)
    if (metric_type == faiss::METRIC_L2) {
        check_l2_norms(n, d, x, "GpuIndexIVFTurboQuant::add");
    } else {
        check_finite(n, d, x, "GpuIndexIVFTurboQuant::add");
    }
    FAISS_THROW_IF_NOT_FMT(
        ntotal + n < INT_MAX,
        "GpuIndexIVFTurboQuant holds fewer than 2^31 - 1 vectors, not %ld",
        (long)(ntotal + n));
    // all or nothing: a batch that fails (out of memory, a bad vector)
    // takes the batches before it back
    const idx_t n0 = ntotal;
    try {
        for (idx_t i0 = 0; i0 < n; i0 += kAddBatch) {
            idx_t nb = std::min(kAddBatch, n - i0);
            append(nb, x + i0 * d, xids + i0, i0);
        }
    } catch (...) {
        truncate(n0);
        throw;
    }
}

void GpuIndexIVFTurboQuant::truncate(idx_t n) {
    // the lists hold positions in add order: those >= n are at their ends
    for (std::vector<int>& l : lists_) {
        while (!l.empty() && l.back() >= n) {
            l.pop_back();
        }
    }
    host_labels_.resize(n);
    ntotal = n;
    rebuild_perm(); // smaller: no allocation
}

void GpuIndexIVFTurboQuant::append(
    idx_t n,
    const float* x,
    const idx_t* xids,
    idx_t first) {
    if (n == 0) {
        return;
    }
    DeviceScope scope(device_);
    // the CPU index's steps: assign with the quantizer, residual x - c_l
    std::vector<idx_t> assign(n);
    coarse_->assign(n, x, assign.data());
    std::vector<float> enc(x, x + n * d);
    // inner-product residuals store <c, x - c> (ip_offset): c per vector
    const bool want_origins = by_residual_ && tq_.ip_offset;
    std::vector<float> origins(want_origins ? n * d : 0);
    for (idx_t i = 0; i < n; i++) {
        FAISS_THROW_IF_NOT_FMT(
            assign[i] >= 0 && assign[i] < (idx_t)nlist,
            "the coarse quantizer assigned list %ld of %zd",
            (long)assign[i],
            nlist);
        if (by_residual_) {
            coarse_->compute_residual(x + i * d, enc.data() + i * d, assign[i]);
        }
        if (want_origins) {
            coarse_->reconstruct(assign[i], origins.data() + i * d);
        }
    }
    const size_t cs = tq_.code_size;
    size_t need = (ntotal + n) * cs;
    if (need > codes_.capacity()) {
        codes_.reserve_keep(
            std::max(need, codes_.capacity() * 3 / 2),
            ntotal * cs,
            stream(),
            kCodeSlack);
    }
    if ((size_t)(ntotal + n) > labels_.capacity()) {
        labels_.reserve_keep(
            std::max<size_t>(ntotal + n, labels_.capacity() * 3 / 2),
            ntotal,
            stream());
    }
    DeviceBuffer<float> xd(res_, device_, "IVF add staging");
    xd.reserve_discard(n * d);
    to_device(xd.data(), enc.data(), enc.size(), stream());
    DeviceBuffer<float> od(res_, device_, "IVF add centroids");
    if (want_origins) {
        od.reserve_discard(n * d);
        to_device(od.data(), origins.data(), origins.size(), stream());
    }
    dcodec_->encode(
        n,
        xd.data(),
        codes_.data() + ntotal * cs,
        stream(),
        want_origins ? od.data() : nullptr,
        first);
    to_device(labels_.data() + ntotal, xids, n, stream());
    // committed only now (rebuild_perm may still fail: add_with_ids then
    // truncates)
    for (idx_t i = 0; i < n; i++) {
        lists_[assign[i]].push_back((int)(ntotal + i));
        host_labels_.push_back(xids[i]);
    }
    ntotal += n;
    rebuild_perm();
}

void GpuIndexIVFTurboQuant::reset() {
    codes_.release();
    labels_.release();
    lists_.assign(nlist, {});
    host_labels_.clear();
    ntotal = 0;
    rebuild_perm();
}

void GpuIndexIVFTurboQuant::reconstruct(idx_t key, float* recons) const {
    auto it = std::find(host_labels_.begin(), host_labels_.end(), key);
    FAISS_THROW_IF_NOT_FMT(
        it != host_labels_.end(),
        "GpuIndexIVFTurboQuant::reconstruct: id %ld is not in the index",
        (long)key);
    const int pos = (int)(it - host_labels_.begin());
    idx_t list_no = -1;
    for (size_t l = 0; l < nlist && list_no < 0; l++) {
        // a list's positions are increasing: added in order, kept in order
        if (std::binary_search(lists_[l].begin(), lists_[l].end(), pos)) {
            list_no = l;
        }
    }
    FAISS_THROW_IF_NOT_MSG(list_no >= 0, "reconstruct: position in no list");
    const size_t cs = tq_.code_size;
    std::vector<uint8_t> code(cs);
    DeviceScope scope(device_);
    to_host(code.data(), codes_.data() + pos * cs, cs, stream());
    tq_.decode(1, code.data(), recons);
    if (by_residual_) {
        std::vector<float> c(d);
        coarse_->reconstruct(list_no, c.data());
        for (idx_t j = 0; j < d; j++) {
            recons[j] += c[j];
        }
    }
}

void GpuIndexIVFTurboQuant::reconstruct_n(
    idx_t i0,
    idx_t ni,
    float* recons) const {
    // IndexIVF::reconstruct_n's contract: ids [i0, i0 + ni) within ntotal;
    // an id stored twice gives its last copy in list order; slots of ids
    // not in the index are left as they are
    FAISS_THROW_IF_NOT_FMT(
        ni == 0 || (i0 >= 0 && i0 + ni <= ntotal),
        "GpuIndexIVFTurboQuant::reconstruct_n: ids [%ld, %ld + %ld) not "
        "within ntotal=%ld",
        (long)i0,
        (long)i0,
        (long)ni,
        (long)ntotal);
    if (ni <= 0) {
        return;
    }
    std::vector<int64_t> pos;  // positions to decode
    std::vector<idx_t> slot;   // their slots in recons
    std::vector<idx_t> owner;  // their lists
    std::vector<int> seen(ni, -1);
    for (size_t l = 0; l < nlist; l++) {
        for (int p : lists_[l]) {
            const idx_t id = host_labels_[p];
            if (id < i0 || id >= i0 + ni) {
                continue;
            }
            if (seen[id - i0] < 0) {
                seen[id - i0] = (int)pos.size();
                pos.push_back(p);
                slot.push_back(id - i0);
                owner.push_back(l);
            } else { // the later copy wins
                pos[seen[id - i0]] = p;
                owner[seen[id - i0]] = l;
            }
        }
    }
    if (pos.empty()) {
        return;
    }
    const size_t cs = tq_.code_size, m = pos.size();
    DeviceScope scope(device_);
    DeviceBuffer<int64_t> dpos(res_, device_, "IVF reconstruct_n");
    DeviceBuffer<uint8_t> dcodes(res_, device_, "IVF reconstruct_n");
    dpos.reserve_discard(m);
    dcodes.reserve_discard(m * cs);
    to_device(dpos.data(), pos.data(), m, stream());
    launch_gather_rows(
        codes_.data(), dpos.data(), m, cs, dcodes.data(), stream());
    std::vector<uint8_t> codes(m * cs);
    to_host(codes.data(), dcodes.data(), m * cs, stream());
    std::vector<float> v(m * d), c(d);
    tq_.decode(m, codes.data(), v.data());
    for (size_t i = 0; i < m; i++) {
        float* out = recons + slot[i] * d;
        memcpy(out, v.data() + i * d, d * sizeof(float));
        if (by_residual_) {
            coarse_->reconstruct(owner[i], c.data());
            for (idx_t j = 0; j < d; j++) {
                out[j] += c[j];
            }
        }
    }
}

size_t GpuIndexIVFTurboQuant::remove_ids(const faiss::IDSelector& sel) {
    std::vector<int64_t> keep;
    std::vector<int> newpos(ntotal, -1);
    for (idx_t p = 0; p < ntotal; p++) {
        if (!sel.is_member(host_labels_[p])) {
            newpos[p] = (int)keep.size();
            keep.push_back(p);
        }
    }
    const size_t nremove = ntotal - keep.size();
    if (nremove == 0) {
        return 0;
    }
    DeviceScope scope(device_);
    const size_t cs = tq_.code_size, nk = keep.size();
    // every allocation first: running out of memory changes nothing
    DeviceBuffer<int64_t> dkeep(res_, device_, "IVF remove_ids");
    DeviceBuffer<uint8_t> codes(res_, device_, "IVF TurboQuant codes");
    DeviceBuffer<int64_t> labels(res_, device_, "IVF TurboQuant ids");
    dkeep.reserve_discard(std::max<size_t>(nk, 1));
    codes.reserve_discard(std::max<size_t>(nk * cs, 1), kCodeSlack);
    labels.reserve_discard(std::max<size_t>(nk, 1));
    std::vector<idx_t> host_labels(nk);
    for (size_t i = 0; i < nk; i++) {
        host_labels[i] = host_labels_[keep[i]];
    }
    to_device(dkeep.data(), keep.data(), nk, stream());
    to_device(labels.data(), host_labels.data(), nk, stream());
    launch_gather_rows(
        codes_.data(), dkeep.data(), nk, cs, codes.data(), stream());
    TQ_CUDA_CHECK(cudaStreamSynchronize(stream()));
    codes_ = std::move(codes);
    labels_ = std::move(labels);
    host_labels_ = std::move(host_labels);
    for (auto& pl : lists_) {
        size_t m = 0;
        for (int p : pl) {
            if (newpos[p] >= 0) {
                pl[m++] = newpos[p];
            }
        }
        pl.resize(m);
    }
    ntotal = nk;
    rebuild_perm();
    return nremove;
}

size_t GpuIndexIVFTurboQuant::getDeviceMemoryUsage() const {
    size_t b = codes_.capacity() ? codes_.capacity() + kCodeSlack : 0;
    b += labels_.capacity() * 8 + perm_.capacity() * 4;
    b += dcodec_ ? dcodec_->table_bytes() : 0;
    std::lock_guard<std::mutex> lock(search_mutex_);
    return b + scratch_->bytes();
}

void GpuIndexIVFTurboQuant::search(
    idx_t n,
    const float* x,
    idx_t k,
    float* distances,
    idx_t* labels,
    const faiss::SearchParameters* params) const {
    // first: the pointer queries and copies would otherwise make a context
    // on the current device
    DeviceScope scope(device_);
    staged_search(
        n, d, k, kMaxSelectK, x, distances, labels, [&](auto xh, auto dh, auto ih) {
            search_host(n, xh, k, dh, ih, params);
        });
}

void GpuIndexIVFTurboQuant::search_host(
    idx_t n,
    const float* x,
    idx_t k,
    float* distances,
    idx_t* labels,
    const faiss::SearchParameters* params) const {
    FAISS_THROW_IF_NOT_FMT(
        k > 0 && k <= kMaxSelectK,
        "GpuIndexIVFTurboQuant::search: k=%ld must be in 1..%d",
        (long)k,
        kMaxSelectK);
    FAISS_THROW_IF_NOT_MSG(
        is_trained, "GpuIndexIVFTurboQuant::search: index not trained");
    if (n == 0) {
        return;
    }
    // FAISS's IVF parameters, as the CPU index takes them
    size_t np = nprobe, mc = max_codes;
    const faiss::SearchParameters* qparams = nullptr;
    auto ivfp = dynamic_cast<const faiss::SearchParametersIVF*>(params);
    FAISS_THROW_IF_NOT_MSG(
        !params || ivfp,
        "GpuIndexIVFTurboQuant::search: params must be a "
        "SearchParametersIVF (nprobe, max_codes, sel), as IndexIVF's");
    if (ivfp) {
        np = ivfp->nprobe;
        mc = ivfp->max_codes;
        qparams = ivfp->quantizer_params;
    }
    np = std::min(np, nlist);
    FAISS_THROW_IF_NOT_MSG(np > 0, "search: nprobe must be > 0");
    const bool l2 = metric_type == faiss::METRIC_L2;
    TQQueries q;
    tq_.prepare_queries(n, x, l2, q); // throws on NaN / Inf
    if (l2) { // the coarse quantizer gave an arbitrary list otherwise
        check_l2_norms(n, d, x, "GpuIndexIVFTurboQuant::search", "query");
    } else { // scores overflow to +-inf and NaN, as on the CPU
        check_ip_norms(n, d, x, "GpuIndexIVFTurboQuant::search", "query");
    }
    std::vector<idx_t> assign(n * np);
    std::vector<float> cdis(n * np);
    coarse_->search(n, x, np, cdis.data(), assign.data(), qparams);
    for (size_t i = 0; i < assign.size(); i++) { // as the CPU's check
        FAISS_THROW_IF_NOT_FMT(
            assign[i] >= -1 && assign[i] < (idx_t)nlist,
            "GpuIndexIVFTurboQuant::search: query %zd assigned to list %ld "
            "of %zd (the coarse quantizer holds %ld centroids)",
            i / np,
            (long)assign[i],
            nlist,
            (long)coarse_->ntotal);
    }

    std::lock_guard<std::mutex> lock(search_mutex_);
    DeviceScope scope(device_);
    const faiss::IDSelector* sel = params ? params->sel : nullptr;
    const uint32_t* allow = sel ? upload_allowed(*sel, assign) : nullptr;
    for (idx_t q0 = 0; q0 < n;) {
        // as many queries as the chunk's candidates and rows allow
        size_t cand = 0;
        int nq = 0;
        while (q0 + nq < n) {
            size_t c = 0;
            for (size_t p = 0; p < np; p++) {
                idx_t l = assign[(q0 + nq) * np + p];
                c += l >= 0 ? lists_[l].size() : 0;
            }
            bool fits = cand + c <= kMaxChunkCandidates &&
                        (nq + 1) * np * d <= kMaxChunkRowFloats;
            if (nq > 0 && !fits) {
                break;
            }
            cand += c;
            nq++;
        }
        search_chunk(
            q,
            assign.data(),
            np,
            mc,
            q0,
            nq,
            (int)k,
            allow,
            distances + q0 * k,
            labels + q0 * k);
        q0 += nq;
    }
    clear_left_out(n * k, l2, distances, labels);
}

const uint32_t* GpuIndexIVFTurboQuant::upload_allowed(
    const faiss::IDSelector& sel,
    const std::vector<idx_t>& assign) const {
    // only the probed lists' codes are read: their ids alone are tested
    std::vector<uint32_t> words = position_bitmap(ntotal);
    std::vector<bool> probed(nlist, false);
    for (idx_t l : assign) {
        if (l >= 0 && !probed[l]) {
            probed[l] = true;
            mark_allowed(
                sel,
                lists_[l].data(),
                lists_[l].size(),
                host_labels_.data(),
                words.data());
        }
    }
    scratch_->allow.reserve_discard(words.size());
    to_device(scratch_->allow.data(), words.data(), words.size(), stream());
    return scratch_->allow.data();
}

void GpuIndexIVFTurboQuant::set_queries_per_list(int n) {
    FAISS_THROW_IF_NOT_FMT(
        n >= 1 && n <= kMaxQueriesPerList,
        "set_queries_per_list: n=%d must be in 1..%d",
        n,
        kMaxQueriesPerList);
    std::lock_guard<std::mutex> lock(search_mutex_); // not during a search
    queries_per_list_ = n;
}

GpuIndexIVFTurboQuant::ListPlan GpuIndexIVFTurboQuant::plan_lists(
    const idx_t* assign,
    size_t R,
    const std::vector<int>& counts,
    const std::vector<int64_t>& pos_off) const {
    // the non-empty rows by list, in row order within a list
    std::vector<std::pair<idx_t, int>> by_list;
    for (size_t r = 0; r < R; r++) {
        if (assign[r] >= 0 && counts[r] > 0) {
            by_list.emplace_back(assign[r], (int)r);
        }
    }
    std::sort(by_list.begin(), by_list.end());
    static_assert(kMaxQueriesPerList == kListQueries, "one limit");
    const int room =
        std::min(queries_per_list_, list_queries_per_item(dcodec_->view()));
    ListPlan plan;
    for (size_t i = 0; i < by_list.size();) {
        size_t e = i;
        while (e < by_list.size() && e - i < (size_t)room &&
               by_list[e].first == by_list[i].first) {
            e++;
        }
        const int r0 = by_list[i].second;
        plan.pos_off.push_back(pos_off[r0]);
        plan.count.push_back(counts[r0]);
        for (int g = 0; g < kListQueries; g++) {
            plan.rows.push_back(i + g < e ? by_list[i + g].second : -1);
        }
        plan.ng = std::max(plan.ng, (int)(e - i));
        i = e;
    }
    return plan;
}

GpuIndexIVFTurboQuant::ChunkRows GpuIndexIVFTurboQuant::prepare_rows(
    const TQQueries& q,
    const idx_t* assign,
    size_t np,
    size_t mc,
    idx_t q0,
    int nq) const {
    const size_t dd = d;
    const bool prod = tq_.variant == TQVariant::PROD;
    const bool l2 = q.l2;
    const size_t R = nq * np;
    ChunkRows cr;
    cr.row_off.resize(R);
    cr.pos_off.resize(R);
    cr.counts.resize(R);
    cr.q_off.resize(nq);
    cr.q_cnt.resize(nq);
    // where each row's candidates go; past mc codes a row scans nothing
    for (int i = 0; i < nq; i++) {
        cr.q_off[i] = cr.total;
        size_t nscan = 0;
        for (size_t p = 0; p < np; p++) {
            const size_t r = i * np + p;
            const idx_t l = assign[(q0 + i) * np + p];
            const bool done = mc && nscan >= mc;
            const int cnt = l >= 0 && !done ? (int)lists_[l].size() : 0;
            nscan += cnt;
            cr.row_off[r] = cr.total;
            cr.pos_off[r] = l >= 0 ? list_off_[l] : 0;
            cr.counts[r] = cnt;
            cr.total += cnt;
            cr.max_row = std::max(cr.max_row, cnt);
        }
        cr.q_cnt[i] = (int)(cr.total - cr.q_off[i]);
        cr.max_q = std::max(cr.max_q, cr.q_cnt[i]);
    }
    // the query seen from each probed list, as the CPU scanner's set_list
    // (rows apart from each other: in parallel for large chunks)
    cr.y.resize(R * dd);
    cr.sy.resize(prod ? R * dd : 0);
    cr.qc.resize(R);
#pragma omp parallel for if (R * dd > (1 << 16))
    for (int64_t r = 0; r < (int64_t)R; r++) {
        const size_t i = r / np;
        const float* yq = q.y.data() + (q0 + i) * dd;
        const float* syq = prod ? q.sy.data() + (q0 + i) * dd : nullptr;
        const idx_t l = assign[q0 * np + r];
        if (cr.counts[r] == 0) {
            continue; // nothing to score from this row
        }
        float* yr = cr.y.data() + r * dd;
        float* syr = prod ? cr.sy.data() + r * dd : nullptr;
        cr.qc[r] = q.qconst[q0 + i];
        memcpy(yr, yq, dd * sizeof(float));
        if (prod) {
            memcpy(syr, syq, dd * sizeof(float));
        }
        if (!by_residual_ || l < 0) {
            continue;
        }
        const float* rc = rc_.data() + l * dd;
        // R (q - c) for L2 and for inner products with ip_offset
        if (l2 || tq_.ip_offset) {
            for (size_t j = 0; j < dd; j++) {
                yr[j] = yq[j] - rc[j];
            }
            if (prod) {
                const float* src = src_.data() + l * dd;
                for (size_t j = 0; j < dd; j++) {
                    syr[j] = syq[j] - src[j];
                }
            }
        }
        cr.qc[r] = l2 ? (float)canonical_dot(yr, yr, dd)
                      : q.qconst[q0 + i] + dot_lanes(yq, rc, dd);
    }
    return cr;
}

void GpuIndexIVFTurboQuant::search_chunk(
    const TQQueries& q,
    const idx_t* assign,
    size_t np,
    size_t mc,
    idx_t q0,
    int nq,
    int k,
    const uint32_t* allow,
    float* distances,
    idx_t* labels) const {
    const size_t dd = d;
    const bool prod = tq_.variant == TQVariant::PROD;
    const bool l2 = q.l2;
    const size_t R = nq * np;
    const ChunkRows cr = prepare_rows(q, assign, np, mc, q0, nq);
    Scratch& s = *scratch_;
    cudaStream_t st = stream();
    s.y.reserve_discard(R * dd);
    s.sy.reserve_discard(std::max<size_t>(cr.sy.size(), 1));
    s.qc.reserve_discard(R);
    s.row_off.reserve_discard(R);
    s.q_off.reserve_discard(nq);
    s.q_cnt.reserve_discard(nq);
    s.keys.reserve_discard(std::max<size_t>(cr.total, 1));
    s.ids.reserve_discard(std::max<size_t>(cr.total, 1));
    s.out_keys.reserve_discard((size_t)nq * k);
    s.out_ids.reserve_discard((size_t)nq * k);
    to_device(s.y.data(), cr.y.data(), cr.y.size(), st);
    to_device(s.sy.data(), cr.sy.data(), cr.sy.size(), st);
    to_device(s.qc.data(), cr.qc.data(), R, st);
    to_device(s.row_off.data(), cr.row_off.data(), R, st);
    to_device(s.q_off.data(), cr.q_off.data(), nq, st);
    to_device(s.q_cnt.data(), cr.q_cnt.data(), nq, st);

    ExactQueries eq;
    eq.nq = (int)R;
    eq.y = s.y.data();
    eq.sy = prod ? s.sy.data() : nullptr;
    eq.qconst = s.qc.data();
    eq.l2 = l2;
    eq.allow = allow;
    CandidateRows rows; // where each row's keys go (the items read lists)
    rows.nrows = (int)R;
    rows.row_off = s.row_off.data();
    ListPlan plan = plan_lists(assign + q0 * np, R, cr.counts, cr.pos_off);
    const size_t ni = plan.count.size();
    s.it_pos_off.reserve_discard(std::max<size_t>(ni, 1));
    s.it_count.reserve_discard(std::max<size_t>(ni, 1));
    s.it_rows.reserve_discard(std::max<size_t>(plan.rows.size(), 1));
    to_device(s.it_pos_off.data(), plan.pos_off.data(), ni, st);
    to_device(s.it_count.data(), plan.count.data(), ni, st);
    to_device(s.it_rows.data(), plan.rows.data(), plan.rows.size(), st);
    ListItems items;
    items.nitems = (int)ni;
    items.pos_off = s.it_pos_off.data();
    items.count = s.it_count.data();
    items.rows = s.it_rows.data();
    items.n = cr.max_row;
    launch_rescore_lists(
        dcodec_->view(),
        codes_.data(),
        eq,
        rows,
        items,
        plan.ng,
        perm_.data(),
        labels_.data(),
        s.keys.data(),
        s.ids.data(),
        st);
    CandidateRows per_query;
    per_query.nrows = nq;
    per_query.row_off = s.q_off.data();
    per_query.counts = s.q_cnt.data();
    per_query.n = cr.max_q;
    launch_select_k(
        s.keys.data(),
        s.ids.data(),
        per_query,
        1,
        std::max(cr.max_q, 1),
        k,
        s.out_keys.data(),
        s.out_ids.data(),
        st,
        !l2); // the CPU's heaps: by IP, ties to the larger id, first
    std::vector<float> keys((size_t)nq * k);
    std::vector<int> ids((size_t)nq * k);
    to_host(keys.data(), s.out_keys.data(), keys.size(), st);
    to_host(ids.data(), s.out_ids.data(), ids.size(), st);
    for (size_t i = 0; i < keys.size(); i++) {
        distances[i] = l2 ? keys[i] : 0.0f - keys[i]; // +0, as the CPU's
        labels[i] = ids[i];
    }
}

} // namespace gpu
} // namespace faiss_turbo
