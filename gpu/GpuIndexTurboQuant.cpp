#include <gpu/GpuIndexTurboQuant.h>

#include <algorithm>
#include <chrono>
#include <climits>
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include <faiss/impl/FaissAssert.h>
#include <faiss/impl/IDSelector.h>

#include <gpu/impl/CudaUtils.h>
#include <gpu/impl/HostStaging.h>
#include <gpu/impl/DeviceCodec.h>
#include <gpu/impl/IdFilter.h>
#include <gpu/impl/kernels.h>

namespace faiss_turbo {
namespace gpu {

namespace {

// AUTO: more queries use tensor cores (fewer too with 4-bit codes)
constexpr int kMaxCudaCoreQueries = 8;
constexpr size_t kAddBatchFloats = size_t(1) << 24;

/// databases are sampled with about 2 sqrt(k N) codes: the sample and the
/// candidates it lets through then cost about the same to rescore
size_t sample_size(size_t ntotal, int k) {
    double s = 2 * std::sqrt((double)k * (double)ntotal);
    size_t lo = std::max<size_t>(4 * (size_t)k, 2048);
    return std::min(ntotal, std::max(lo, (size_t)s));
}

double ms_since(std::chrono::steady_clock::time_point t0) {
    return std::chrono::duration<double, std::milli>(
               std::chrono::steady_clock::now() - t0)
        .count();
}

template <typename T>
void to_device(T* dst, const T* src, size_t n, cudaStream_t s) {
    if (n > 0) {
        TQ_CUDA_CHECK(cudaMemcpyAsync(
            dst, src, n * sizeof(T), cudaMemcpyHostToDevice, s));
    }
}

/// the selection keeps the larger ids of equal inner products first, as
/// the CPU's heaps keep them; IndexTurboQuant then lists a run of equal
/// distances by ascending id (results before the padding: a run of -inf
/// scores may end in empty slots, id -1, which stay last)
void ascending_ids_in_ties(int nq, int k, float* distances, idx_t* labels) {
    for (int i = 0; i < nq; i++) {
        float* D = distances + (size_t)i * k;
        idx_t* I = labels + (size_t)i * k;
        for (int b = 0, e; b < k; b = e) {
            for (e = b + 1; e < k && D[e] == D[b] && I[e] >= 0; e++) {
            }
            std::reverse(I + b, I + e);
            for (; e < k && I[e] < 0; e++) { // padding
            }
        }
    }
}

/// CUDA events around the approximate pass (collect_timing), destroyed
/// however the search ends
class PassTimer {
   public:
    explicit PassTimer(bool on) {
        if (on) {
            TQ_CUDA_CHECK(cudaEventCreate(&e0_));
            cudaError_t err = cudaEventCreate(&e1_);
            if (err != cudaSuccess) {
                cudaEventDestroy(e0_);
                TQ_CUDA_CHECK(err);
            }
        }
    }
    ~PassTimer() {
        if (e0_) {
            cudaEventDestroy(e0_);
            cudaEventDestroy(e1_);
        }
    }
    PassTimer(const PassTimer&) = delete;
    PassTimer& operator=(const PassTimer&) = delete;
    void start(cudaStream_t s) {
        if (e0_) {
            TQ_CUDA_CHECK(cudaEventRecord(e0_, s));
        }
    }
    void stop(cudaStream_t s) {
        if (e1_) {
            TQ_CUDA_CHECK(cudaEventRecord(e1_, s));
        }
    }
    /// between start and stop, once the stream has passed stop; 0 if off
    float ms() const {
        float ms = 0;
        if (e0_) {
            TQ_CUDA_CHECK(cudaEventElapsedTime(&ms, e0_, e1_));
        }
        return ms;
    }

   private:
    cudaEvent_t e0_ = nullptr, e1_ = nullptr;
};

template <typename T>
void to_host(T* dst, const T* src, size_t n, cudaStream_t s) {
    if (n > 0) {
        TQ_CUDA_CHECK(cudaMemcpyAsync(
            dst, src, n * sizeof(T), cudaMemcpyDeviceToHost, s));
    }
    TQ_CUDA_CHECK(cudaStreamSynchronize(s));
}

} // namespace

/// device buffers of search, kept between searches (grow only)
struct GpuIndexTurboQuant::Scratch {
    DeviceBuffer<float> y, sy, qc, a, yn, an, keys, topk_keys, out_keys;
    DeviceBuffer<int> ids, topk_ids, out_ids, cand, counts;
    DeviceBuffer<uint32_t> allow;
    DeviceBuffer<int> kept, sample_pos;
    DeviceBuffer<int64_t> zeros;

    Scratch(GpuResources* r, int dev)
        : y(r, dev, "search queries"),
          sy(r, dev, "search queries"),
          qc(r, dev, "search queries"),
          a(r, dev, "search queries"),
          yn(r, dev, "search queries"),
          an(r, dev, "search queries"),
          keys(r, dev, "search keys"),
          topk_keys(r, dev, "search top-k"),
          out_keys(r, dev, "search results"),
          ids(r, dev, "search ids"),
          topk_ids(r, dev, "search top-k"),
          out_ids(r, dev, "search results"),
          cand(r, dev, "search candidates"),
          counts(r, dev, "search candidates"),
          allow(r, dev, "search selector"),
          kept(r, dev, "search selector"),
          sample_pos(r, dev, "search selector"),
          zeros(r, dev, "search selector") {}

    size_t bytes() const {
        size_t f = y.capacity() + sy.capacity() + qc.capacity() + a.capacity() +
                   yn.capacity() + an.capacity() + keys.capacity() +
                   topk_keys.capacity() + out_keys.capacity();
        size_t i = ids.capacity() + topk_ids.capacity() + out_ids.capacity() +
                   cand.capacity() + counts.capacity() + allow.capacity() +
                   kept.capacity() + sample_pos.capacity() +
                   2 * zeros.capacity();
        return (f + i) * 4;
    }
};

/// the codes a search's IDSelector keeps (impl/IdFilter.h), on the device
/// and, for sampling among them, on the host
struct GpuIndexTurboQuant::KeptCodes {
    const uint32_t* allow = nullptr; ///< bitmap over positions
    const int* pos = nullptr;        ///< the kept positions, increasing
    std::vector<int> host;           ///< the same on the host
};

namespace {

void check_scan_mode(GpuScanMode m, const char* what) {
    FAISS_THROW_IF_NOT_FMT(
        m == GpuScanMode::AUTO || m == GpuScanMode::CUDA_CORES ||
            m == GpuScanMode::TENSOR_CORES,
        "%s: scan_mode=%d is not a GpuScanMode (AUTO 0, CUDA_CORES 1, "
        "TENSOR_CORES 2)",
        what,
        (int)m);
}

} // namespace

GpuIndexTurboQuant::GpuIndexTurboQuant(
    GpuResources* res,
    const IndexTurboQuant& cpu,
    GpuIndexTurboQuantConfig config)
    : faiss::Index(cpu.d, cpu.metric_type),
      res_(res),
      config_(config),
      codes_(res, config.device, "TurboQuant codes") {
    FAISS_THROW_IF_NOT_MSG(res, "GpuIndexTurboQuant: null GpuResources");
    checkDevice(config_.device);
    check_scan_mode(config_.scan_mode, "GpuIndexTurboQuant");
    copyFrom(cpu);
}

GpuIndexTurboQuant::GpuIndexTurboQuant(
    GpuResources* res,
    idx_t d_in,
    float bits,
    TQVariant variant,
    faiss::MetricType metric,
    bool centered,
    bool debiased,
    RotationType rotation_type,
    QJLType qjl_type,
    uint64_t seed,
    GpuIndexTurboQuantConfig config)
    : faiss::Index(d_in, metric),
      res_(res),
      config_(config),
      codec_(
          d_in,
          bits,
          variant,
          metric,
          centered,
          debiased,
          rotation_type,
          qjl_type,
          seed),
      codes_(res, config.device, "TurboQuant codes") {
    FAISS_THROW_IF_NOT_MSG(res, "GpuIndexTurboQuant: null GpuResources");
    checkDevice(config_.device);
    check_scan_mode(config_.scan_mode, "GpuIndexTurboQuant");
    is_trained = codec_.is_trained;
    init_device_state();
}

GpuIndexTurboQuant::~GpuIndexTurboQuant() {}

void GpuIndexTurboQuant::set_scan_mode(GpuScanMode m) {
    check_scan_mode(m, "GpuIndexTurboQuant::set_scan_mode");
    config_.scan_mode = m;
}

void GpuIndexTurboQuant::init_device_state(std::unique_ptr<DeviceCodec> dc) {
    DeviceScope scope(config_.device);
    dcodec_ = dc ? std::move(dc)
                 : std::unique_ptr<DeviceCodec>(
                       new DeviceCodec(res_, config_.device, codec_.tq));
    TQ_CUDA_CHECK(cudaDeviceGetAttribute(
        &num_sms_, cudaDevAttrMultiProcessorCount, config_.device));
    if (!scratch_) {
        scratch_.reset(new Scratch(res_, config_.device));
    }
}

cudaStream_t GpuIndexTurboQuant::stream() const {
    return res_->getStream(config_.device);
}

size_t GpuIndexTurboQuant::code_size() const {
    return codec_.tq.code_size;
}

void GpuIndexTurboQuant::copyFrom(const IndexTurboQuant& cpu) {
    FAISS_THROW_IF_NOT_FMT(
        cpu.ntotal < INT_MAX,
        "GpuIndexTurboQuant holds fewer than 2^31 - 1 vectors, not %ld",
        (long)cpu.ntotal);
    DeviceScope scope(config_.device);
    // the device tables and the codes first: if either cannot be made (d
    // past kMaxGpuDim, out of memory), the index stays as it was
    std::unique_ptr<DeviceCodec> dc(
        new DeviceCodec(res_, config_.device, cpu.tq));
    DeviceBuffer<uint8_t> fresh(res_, config_.device, "TurboQuant codes");
    fresh.reserve_discard(
        std::max<size_t>(cpu.ntotal * cpu.code_size, 1), kCodeSlack);
    to_device(fresh.data(), cpu.codes.data(), cpu.ntotal * cpu.code_size,
              stream());
    TQ_CUDA_CHECK(cudaStreamSynchronize(stream()));
    codec_ = IndexTurboQuant();
    codec_.d = cpu.d;
    codec_.metric_type = cpu.metric_type;
    codec_.metric_arg = cpu.metric_arg;
    codec_.tq = cpu.tq;
    codec_.centered = cpu.centered;
    codec_.code_size = cpu.code_size;
    codec_.is_trained = cpu.is_trained;
    codec_.search_defaults = cpu.search_defaults; // for copyTo
    d = cpu.d;
    metric_type = cpu.metric_type;
    metric_arg = cpu.metric_arg;
    is_trained = cpu.is_trained;
    codes_ = std::move(fresh);
    ntotal = cpu.ntotal;
    init_device_state(std::move(dc));
}

void GpuIndexTurboQuant::copyTo(IndexTurboQuant* cpu) const {
    FAISS_THROW_IF_NOT_MSG(cpu, "copyTo: null index");
    // all that can fail first (the device read, host memory), so that cpu
    // stays as it was; then a reset (empty containers: no allocation),
    // moves and a swap
    TurboQuantizer tq = codec_.tq;
    decltype(cpu->codes) codes;
    codes.resize(ntotal * code_size());
    get_codes(0, ntotal, codes_data(codes));
    *cpu = IndexTurboQuant();
    cpu->search_defaults = codec_.search_defaults;
    cpu->d = d;
    cpu->metric_type = metric_type;
    cpu->metric_arg = metric_arg;
    cpu->tq = std::move(tq);
    cpu->centered = codec_.centered;
    cpu->code_size = code_size();
    cpu->is_trained = is_trained;
    std::swap(cpu->codes, codes);
    cpu->ntotal = ntotal;
}

void GpuIndexTurboQuant::train(idx_t n, const float* x) {
    if (!codec_.centered) {
        return;
    }
    FAISS_THROW_IF_NOT_MSG(
        ntotal == 0,
        "GpuIndexTurboQuant::train: the mean can only change while the "
        "index is empty");
    // the device tables first: if they cannot be made (out of memory),
    // the index keeps its mean, its tables and its trained state
    const std::vector<float> old_mean = codec_.tq.mean;
    const bool old_trained = codec_.is_trained;
    DeviceScope scope(config_.device);
    HostInput<float> xh(x, std::max<idx_t>(n, 0) * d);
    codec_.train(n, xh.get());
    try {
        init_device_state(); // upload the new mean
    } catch (...) {
        codec_.tq.mean = old_mean;
        codec_.is_trained = old_trained;
        throw;
    }
    is_trained = codec_.is_trained;
}

void GpuIndexTurboQuant::grow_codes(idx_t n_total) {
    FAISS_THROW_IF_NOT_FMT(
        n_total < INT_MAX,
        "GpuIndexTurboQuant holds fewer than 2^31 - 1 vectors, not %ld",
        (long)n_total);
    size_t need = (size_t)n_total * code_size();
    if (need <= codes_.capacity()) {
        return;
    }
    DeviceScope scope(config_.device);
    size_t keep = (size_t)ntotal * code_size();
    size_t geometric = codes_.capacity() + codes_.capacity() / 2;
    if (geometric > need) {
        try {
            codes_.reserve_keep(geometric, keep, stream(), kCodeSlack);
            return;
        } catch (const faiss::FaissException&) {
            // not enough memory for the headroom: try the exact size
        }
    }
    codes_.reserve_keep(need, keep, stream(), kCodeSlack);
}

void GpuIndexTurboQuant::reserve(idx_t n) {
    FAISS_THROW_IF_NOT_FMT(n >= 0, "reserve: n=%ld < 0", (long)n);
    grow_codes(n);
}

void GpuIndexTurboQuant::add(idx_t n, const float* x) {
    FAISS_THROW_IF_NOT_FMT(n >= 0, "add: n=%ld < 0", (long)n);
    FAISS_THROW_IF_NOT_MSG(
        is_trained, "GpuIndexTurboQuant: train() the centered index first");
    if (n == 0) {
        return;
    }
    DeviceScope scope(config_.device);
    if (pointerDevice(x) == config_.device) {
        add_from_device(n, x);
        return;
    }
    // host memory, or another GPU's (copied through the host)
    HostInput<float> xh(x, n * d);
    x = xh.get();
    grow_codes(ntotal + n);
    size_t batch =
        std::min<size_t>(n, std::max<size_t>(1, kAddBatchFloats / d));
    DeviceBuffer<float> xd(res_, config_.device, "add staging");
    xd.reserve_discard(batch * d);
    for (idx_t i0 = 0; i0 < n; i0 += batch) {
        size_t nb = std::min<size_t>(batch, n - i0);
        to_device(xd.data(), x + i0 * d, nb * d, stream());
        dcodec_->encode(
            nb,
            xd.data(),
            codes_.data() + (ntotal + i0) * code_size(),
            stream(),
            nullptr,
            i0);
    }
    ntotal += n; // only now: a bad vector leaves the index unchanged
}

void GpuIndexTurboQuant::add_from_device(idx_t n, const float* x_dev) {
    FAISS_THROW_IF_NOT_FMT(n >= 0, "add: n=%ld < 0", (long)n);
    FAISS_THROW_IF_NOT_MSG(
        is_trained, "GpuIndexTurboQuant: train() the centered index first");
    if (n == 0) {
        return;
    }
    check_on_device(x_dev, "add_from_device: x");
    grow_codes(ntotal + n);
    dcodec_->encode(n, x_dev, codes_.data() + ntotal * code_size(), stream());
    ntotal += n;
}

void GpuIndexTurboQuant::check_on_device(const void* p, const char* what)
    const {
    const int dev = pointerDevice(p);
    FAISS_THROW_IF_NOT_FMT(
        dev == config_.device,
        "GpuIndexTurboQuant::%s must be memory of device %d, not %s",
        what,
        config_.device,
        dev < 0 ? "host memory" : "another device's");
}

void GpuIndexTurboQuant::encode_device(
    idx_t n, const float* x_dev, uint8_t* codes_dev) const {
    FAISS_THROW_IF_NOT_FMT(n >= 0, "encode: n=%ld < 0", (long)n);
    FAISS_THROW_IF_NOT_MSG(is_trained, "encode: index not trained");
    if (n == 0) {
        return;
    }
    check_on_device(x_dev, "encode_device: x");
    check_on_device(codes_dev, "encode_device: codes");
    dcodec_->encode(n, x_dev, codes_dev, stream());
}

void GpuIndexTurboQuant::sa_encode(idx_t n, const float* x, uint8_t* bytes)
    const {
    FAISS_THROW_IF_NOT_FMT(n >= 0, "sa_encode: n=%ld < 0", (long)n);
    DeviceScope scope(config_.device);
    HostInput<float> in(x, n * d);
    HostOutput<uint8_t> out(bytes, n * code_size());
    codec_.sa_encode(n, in.get(), out.get());
    out.commit();
}

void GpuIndexTurboQuant::sa_decode(idx_t n, const uint8_t* bytes, float* x)
    const {
    FAISS_THROW_IF_NOT_FMT(n >= 0, "sa_decode: n=%ld < 0", (long)n);
    DeviceScope scope(config_.device);
    HostInput<uint8_t> in(bytes, n * code_size());
    HostOutput<float> out(x, n * d);
    codec_.sa_decode(n, in.get(), out.get());
    out.commit();
}

void GpuIndexTurboQuant::get_codes(idx_t i0, idx_t n, uint8_t* out) const {
    FAISS_THROW_IF_NOT_FMT(
        i0 >= 0 && n >= 0 && i0 + n <= ntotal,
        "get_codes: range [%ld, %ld) outside [0, %ld)",
        (long)i0,
        (long)(i0 + n),
        (long)ntotal);
    DeviceScope scope(config_.device);
    to_host(out, codes_.data() + i0 * code_size(), n * code_size(), stream());
}

void GpuIndexTurboQuant::reconstruct(idx_t key, float* recons) const {
    reconstruct_n(key, 1, recons);
}

void GpuIndexTurboQuant::reconstruct_n(
    idx_t i0, idx_t ni, float* recons) const {
    FAISS_THROW_IF_NOT_FMT(
        i0 >= 0 && ni >= 0 && i0 + ni <= ntotal,
        "reconstruct: ids [%ld, %ld) outside [0, %ld)",
        (long)i0,
        (long)(i0 + ni),
        (long)ntotal);
    std::vector<uint8_t> buf(ni * code_size());
    get_codes(i0, ni, buf.data());
    codec_.tq.decode(ni, buf.data(), recons); // the CPU decoder: same codes
}

void GpuIndexTurboQuant::reset() {
    codes_.release();
    ntotal = 0;
}

size_t GpuIndexTurboQuant::remove_ids(const faiss::IDSelector& sel) {
    std::vector<int64_t> keep;
    keep.reserve(ntotal);
    for (idx_t i = 0; i < ntotal; i++) {
        if (!sel.is_member(i)) {
            keep.push_back(i);
        }
    }
    size_t nremove = ntotal - keep.size();
    if (nremove == 0) {
        return 0;
    }
    DeviceScope scope(config_.device);
    DeviceBuffer<int64_t> dkeep(res_, config_.device, "remove_ids");
    dkeep.reserve_discard(std::max<size_t>(keep.size(), 1));
    to_device(dkeep.data(), keep.data(), keep.size(), stream());
    DeviceBuffer<uint8_t> fresh(res_, config_.device, "TurboQuant codes");
    fresh.reserve_discard(keep.size() * code_size(), kCodeSlack);
    launch_gather_rows(
        codes_.data(),
        dkeep.data(),
        keep.size(),
        code_size(),
        fresh.data(),
        stream());
    TQ_CUDA_CHECK(cudaStreamSynchronize(stream()));
    codes_ = std::move(fresh);
    ntotal = keep.size();
    return nremove;
}

size_t GpuIndexTurboQuant::getDeviceMemoryUsage() const {
    size_t b = codes_.capacity() ? codes_.capacity() + kCodeSlack : 0;
    b += dcodec_ ? dcodec_->table_bytes() : 0;
    std::lock_guard<std::mutex> lock(search_mutex_);
    return b + (scratch_ ? scratch_->bytes() : 0);
}

void GpuIndexTurboQuant::search(
    idx_t n,
    const float* x,
    idx_t k,
    float* distances,
    idx_t* labels,
    const faiss::SearchParameters* params) const {
    // first: the pointer queries and copies would otherwise make a context
    // on the current device
    DeviceScope scope(config_.device);
    staged_search(
        n, d, k, kMaxSelectK, x, distances, labels, [&](auto xh, auto dh, auto ih) {
            search_host(n, xh, k, dh, ih, params);
        });
}

void GpuIndexTurboQuant::search_host(
    idx_t n,
    const float* x,
    idx_t k,
    float* distances,
    idx_t* labels,
    const faiss::SearchParameters* params) const {
    FAISS_THROW_IF_NOT_FMT(
        k > 0 && k <= kMaxSelectK,
        "GpuIndexTurboQuant::search: k=%ld must be in 1..%d",
        (long)k,
        kMaxSelectK);
    FAISS_THROW_IF_NOT_MSG(is_trained, "search: index not trained");
    if (n == 0) {
        return;
    }
    const faiss::IDSelector* sel = params ? params->sel : nullptr;
    std::lock_guard<std::mutex> lock(search_mutex_);
    auto t0 = std::chrono::steady_clock::now();
    stats_ = GpuSearchStats();
    const bool l2 = metric_type == faiss::METRIC_L2;
    TQQueries q; // bad queries throw, as on the CPU, even with no vectors
    codec_.prepare_queries(n, x, q); // the CPU's: same y, S y, constants
    q.check_range("GpuIndexTurboQuant::search", x, d);
    if (ntotal == 0) {
        float empty = l2 ? std::numeric_limits<float>::infinity()
                         : -std::numeric_limits<float>::infinity();
        std::fill(distances, distances + n * k, empty);
        std::fill(labels, labels + n * k, idx_t(-1));
        return;
    }
    DeviceScope scope(config_.device);
    KeptCodes kept;
    if (sel) {
        upload_kept(*sel, kept);
        if (kept.host.empty()) {
            std::fill(distances, distances + n * k, l2 ? INFINITY : -INFINITY);
            std::fill(labels, labels + n * k, idx_t(-1));
            return;
        }
    }
    const CodecView& c = dcodec_->view();
    const int tc_max = approx_tc_max_queries(c);
    const int simt_max = approx_simt_max_queries(c);
    const bool tc4 = tc4_max_queries(c) > 0;
    FAISS_THROW_IF_NOT_FMT(
        config_.scan_mode != GpuScanMode::TENSOR_CORES || tc_max > 0,
        "GpuIndexTurboQuant: d=%ld too large for the tensor-core pass",
        (long)d);
    for (idx_t q0 = 0; q0 < n;) {
        idx_t rem = n - q0;
        // AUTO: the 4-bit tensor-core pass for any batch (on an H200 it
        // scanned 4x faster than the CUDA-core pass for one query), the
        // generic one for more than kMaxCudaCoreQueries
        bool tc = config_.scan_mode == GpuScanMode::TENSOR_CORES ||
                  (config_.scan_mode == GpuScanMode::AUTO && tc_max > 0 &&
                   (rem > kMaxCudaCoreQueries || tc4));
        int nq = (int)std::min<idx_t>(rem, tc ? tc_max : simt_max);
        search_chunk(
            q,
            q0,
            nq,
            (int)k,
            tc,
            sel ? &kept : nullptr,
            distances + q0 * k,
            labels + q0 * k);
        stats_.chunks++;
        stats_.tensor_cores |= tc;
        q0 += nq;
    }
    if (l2) { // a +inf distance is an empty slot, as in the CPU's heap;
        // IndexTurboQuant keeps inner products of -inf with their ids
        clear_left_out(n * k, l2, distances, labels);
    }
    stats_.total_ms = ms_since(t0);
}

void GpuIndexTurboQuant::upload_kept(
    const faiss::IDSelector& sel,
    KeptCodes& kept) const {
    std::vector<uint32_t> words = position_bitmap(ntotal);
    mark_allowed(sel, nullptr, ntotal, nullptr, words.data()); // ids: positions
    for (size_t p = 0; p < (size_t)ntotal; p++) {
        if ((words[p / 32] >> (p % 32)) & 1u) {
            kept.host.push_back((int)p);
        }
    }
    Scratch& s = *scratch_;
    s.allow.reserve_discard(words.size());
    to_device(s.allow.data(), words.data(), words.size(), stream());
    s.kept.reserve_discard(std::max<size_t>(kept.host.size(), 1));
    to_device(s.kept.data(), kept.host.data(), kept.host.size(), stream());
    kept.allow = s.allow.data();
    kept.pos = s.kept.data();
}

void GpuIndexTurboQuant::search_chunk(
    const TQQueries& q,
    idx_t q0,
    int nq,
    int k,
    bool tc,
    const KeptCodes* kept,
    float* distances,
    idx_t* labels) const {
    const CodecView& c = dcodec_->view();
    Scratch& s = *scratch_;
    cudaStream_t st = stream();
    const size_t dd = d;
    const size_t N = ntotal;
    const bool prod = c.prod;

    s.y.reserve_discard(nq * dd);
    s.qc.reserve_discard(nq);
    to_device(s.y.data(), q.y.data() + q0 * dd, nq * dd, st);
    to_device(s.qc.data(), q.qconst.data() + q0, nq, st);
    if (prod) {
        s.sy.reserve_discard(nq * dd);
        to_device(s.sy.data(), q.sy.data() + q0 * dd, nq * dd, st);
    }
    ExactQueries eq;
    eq.nq = nq;
    eq.y = s.y.data();
    eq.sy = prod ? s.sy.data() : nullptr;
    eq.qconst = s.qc.data();
    eq.l2 = q.l2;
    eq.allow = kept ? kept->allow : nullptr;

    s.out_keys.reserve_discard((size_t)nq * k);
    s.out_ids.reserve_discard((size_t)nq * k);
    const size_t S = sample_size(N, k);
    // the approximate pass's first candidate capacity per query
    size_t cap =
        std::min(N, std::max<size_t>(4096, 4 * (size_t)k * N / S + 1024));
    // with a selector: the kept codes alone when they would fit there
    const size_t nkept = kept ? kept->host.size() : N;
    const bool direct = (int64_t)N <= config_.direct_max_ntotal ||
                        2 * S >= N || (kept && nkept <= cap);
    auto rows_of = [nq](size_t stride, const int* counts, size_t n) {
        CandidateRows r;
        r.nrows = nq;
        r.stride = stride;
        r.counts = counts;
        r.n = (int)n;
        return r;
    };
    if (kept) { // every row reads the same positions: offset 0
        s.zeros.reserve_discard(nq);
        TQ_CUDA_CHECK(cudaMemsetAsync(s.zeros.data(), 0, nq * 8, st));
    }
    if (direct) {
        // every (kept) code rescored exactly
        s.keys.reserve_discard(nq * nkept);
        s.ids.reserve_discard(nq * nkept);
        CandidateRows all = rows_of(nkept, nullptr, nkept);
        all.pos_off = kept ? s.zeros.data() : nullptr;
        launch_rescore(
            c,
            codes_.data(),
            N,
            eq,
            all,
            kept ? kept->pos : nullptr,
            nullptr,
            s.keys.data(),
            s.ids.data(),
            st);
        launch_select_k(
            s.keys.data(),
            s.ids.data(),
            all,
            1,
            (int)nkept,
            k,
            s.out_keys.data(),
            s.out_ids.data(),
            st,
            !q.l2); // ties as the CPU's heaps: larger ids first by IP
        stats_.candidates += (int64_t)nq * nkept;
    } else {
        // 1. the k-th best exact key of a sample bounds the k-th overall
        // (with a selector the sample is drawn from the kept codes)
        const size_t Sk = std::min(S, nkept);
        s.keys.reserve_discard(nq * Sk);
        s.ids.reserve_discard(nq * Sk);
        s.topk_keys.reserve_discard((size_t)nq * k);
        s.topk_ids.reserve_discard((size_t)nq * k);
        CandidateRows sample = rows_of(Sk, nullptr, Sk);
        if (kept) {
            std::vector<int> pos(Sk);
            for (size_t i = 0; i < Sk; i++) {
                pos[i] = kept->host[i * nkept / Sk];
            }
            s.sample_pos.reserve_discard(Sk);
            to_device(s.sample_pos.data(), pos.data(), Sk, st);
            sample.pos_off = s.zeros.data();
        }
        launch_rescore(
            c,
            codes_.data(),
            N,
            eq,
            sample,
            kept ? s.sample_pos.data() : nullptr,
            nullptr,
            s.keys.data(),
            s.ids.data(),
            st);
        launch_select_k(
            s.keys.data(),
            s.ids.data(),
            sample,
            1,
            (int)Sk,
            k,
            s.topk_keys.data(),
            s.topk_ids.data(),
            st,
            !q.l2); // ties as the CPU's heaps: larger ids first by IP
        // 2. approximate pass: queries as a = [y, f S y] / |y|
        const ApproxQueryRows ar = approx_query_rows(c, q, q0, nq, dd);
        s.a.reserve_discard(ar.a.size());
        s.yn.reserve_discard(nq);
        s.an.reserve_discard(nq);
        to_device(s.a.data(), ar.a.data(), ar.a.size(), st);
        to_device(s.yn.data(), ar.ynorm.data(), nq, st);
        to_device(s.an.data(), ar.anorm.data(), nq, st);
        ApproxQueries aq;
        aq.nq = nq;
        aq.a = s.a.data();
        aq.qconst = s.qc.data();
        aq.ynorm = s.yn.data();
        aq.anorm = s.an.data();
        aq.thresh = s.topk_keys.data() + (k - 1);
        aq.t_stride = k;
        aq.l2 = q.l2;
        approx_error_model(c, tc, &aq.rel, &aq.abs);

        std::vector<int> counts(nq);
        int maxc = 0;
        PassTimer timer(config_.collect_timing);
        ScanArgs sa;
        sa.c = c;
        sa.codes = codes_.data();
        sa.ntotal = N;
        sa.q = aq;
        sa.num_sms = num_sms_;
        sa.stream = st;
        while (true) {
            s.cand.reserve_discard((size_t)nq * cap);
            s.counts.reserve_discard(nq);
            TQ_CUDA_CHECK(cudaMemsetAsync(s.counts.data(), 0, nq * 4, st));
            sa.out.ids = s.cand.data();
            sa.out.counts = s.counts.data();
            sa.out.capacity = (int)cap;
            sa.out.allow = kept ? kept->allow : nullptr;
            timer.start(st);
            launch_scan_approx(tc, sa);
            timer.stop(st);
            to_host(counts.data(), s.counts.data(), nq, st);
            stats_.approx_ms += timer.ms();
            maxc = *std::max_element(counts.begin(), counts.end());
            if ((size_t)maxc <= cap) {
                break;
            }
            cap = maxc; // rare: the sample's bound let too many through
            stats_.retries++;
        }
        for (int cnt : counts) {
            stats_.candidates += cnt;
        }
        // 3. exact keys of the candidates, then the top k
        s.keys.reserve_discard((size_t)nq * cap);
        s.ids.reserve_discard((size_t)nq * cap);
        CandidateRows cand = rows_of(cap, s.counts.data(), maxc);
        launch_rescore(
            c,
            codes_.data(),
            N,
            eq,
            cand,
            s.cand.data(),
            nullptr,
            s.keys.data(),
            s.ids.data(),
            st);
        launch_select_k(
            s.keys.data(),
            s.ids.data(),
            cand,
            1,
            maxc,
            k,
            s.out_keys.data(),
            s.out_ids.data(),
            st,
            !q.l2); // ties as the CPU's heaps: larger ids first by IP
    }
    std::vector<float> keys((size_t)nq * k);
    std::vector<int> ids((size_t)nq * k);
    to_host(keys.data(), s.out_keys.data(), keys.size(), st);
    to_host(ids.data(), s.out_ids.data(), ids.size(), st);
    for (size_t i = 0; i < keys.size(); i++) {
        // 0 - key: a zero inner product is +0, as the CPU's
        distances[i] = q.l2 ? keys[i] : 0.0f - keys[i];
        labels[i] = ids[i];
    }
    if (!q.l2) {
        ascending_ids_in_ties(nq, k, distances, labels);
    }
}

} // namespace gpu
} // namespace faiss_turbo
