/**
 * Flat TurboQuant index on one GPU: the codes of IndexTurboQuant (same
 * codec: rotation, codebooks, layout) held in device memory.
 *
 * Encoding on the device reproduces the CPU's codes bit for bit (every
 * rotation and QJL type: the kernels follow the CPU's operation order).
 *
 * Search gives the CPU index's results, bit for bit, for the same codes:
 * see impl/kernels.h (exact rescoring of a sample, approximate filtering
 * with a proven error bound, exact rescoring of the candidates).
 */
#pragma once

#include <memory>
#include <mutex>

#include <faiss/Index.h>

#include <faiss_turbo/IndexTurboQuant.h>
#include <faiss_turbo/impl/compat.h>

#include <gpu/GpuResources.h>
#include <gpu/impl/DeviceBuffer.h>

namespace faiss_turbo {
namespace gpu {

class DeviceCodec;

enum class GpuScanMode : int {
    AUTO = 0,         ///< tensor cores for more than 8 queries, or any
                      ///< number with 4-bit MSE codes (d % 32 == 0)
    CUDA_CORES = 1,   ///< fp32 approximate pass
    TENSOR_CORES = 2, ///< fp16 mma approximate pass
};

struct GpuIndexTurboQuantConfig {
    int device = 0;
    GpuScanMode scan_mode = GpuScanMode::AUTO;
    /// up to this many vectors, search rescores all codes exactly
    /// (no sample, no approximate pass)
    int64_t direct_max_ntotal = 32768;
    /// time the search stages with CUDA events (GpuSearchStats)
    bool collect_timing = false;
};

/// what the last search did (filled when collect_timing is set)
struct GpuSearchStats {
    double approx_ms = 0;   ///< approximate passes, all query chunks
    double total_ms = 0;    ///< the whole search, host work included
    int64_t candidates = 0; ///< candidates rescored, all queries
    int retries = 0;        ///< approximate passes rerun after an overflow
    int chunks = 0;
    bool tensor_cores = false;
};

class GpuIndexTurboQuant : public faiss::Index {
   public:
    /// a copy of a CPU index (codec and codes)
    GpuIndexTurboQuant(
        GpuResources* res,
        const IndexTurboQuant& cpu,
        GpuIndexTurboQuantConfig config = GpuIndexTurboQuantConfig());

    /// an empty index; parameters as IndexTurboQuant's
    GpuIndexTurboQuant(
        GpuResources* res,
        idx_t d,
        float bits,
        TQVariant variant = TQVariant::MSE,
        faiss::MetricType metric = faiss::METRIC_L2,
        bool centered = false,
        bool debiased = true,
        RotationType rotation_type = RotationType::AUTO,
        QJLType qjl_type = QJLType::AUTO,
        uint64_t seed = 1234,
        GpuIndexTurboQuantConfig config = GpuIndexTurboQuantConfig());

    ~GpuIndexTurboQuant() override;

    /// replace codec and codes by the CPU index's
    void copyFrom(const IndexTurboQuant& cpu);

    /// the CPU index with this codec and these codes
    void copyTo(IndexTurboQuant* cpu) const;

    /// learns the mean of the centered variant (on the host, as the CPU)
    void train(idx_t n, const float* x) override;

    /// x on the host or in device memory. Unlike the CPU index's, a vector
    /// whose squared norm overflows float is stored (as IndexFlatL2 does):
    /// with L2 it is at distance +inf from every query
    void add(idx_t n, const float* x) override;

    /// x (n x d floats) already in this index's device memory (else an
    /// error)
    void add_from_device(idx_t n, const float* x_dev);

    /// encode device vectors into device codes (n x code_size) without
    /// adding them
    void encode_device(idx_t n, const float* x_dev, uint8_t* codes_dev) const;

    /// room for n vectors in total (throws if the device lacks it)
    void reserve(idx_t n);

    /// queries and results on the host or in device memory (device
    /// queries are copied to the host, where the CPU codec prepares them),
    /// any n, 1 <= k <= 2048. An IDSelector in params is applied by the
    /// exact rescoring (impl/IdFilter.h): the CPU's results with it
    void search(
        idx_t n,
        const float* x,
        idx_t k,
        float* distances,
        idx_t* labels,
        const faiss::SearchParameters* params = nullptr) const override;

    void reconstruct(idx_t key, float* recons) const override;
    void reconstruct_n(idx_t i0, idx_t ni, float* recons) const override;

    void reset() override;

    /// removes the selected ids; the others shift down (IndexFlatCodes')
    size_t remove_ids(const faiss::IDSelector& sel) override;

    size_t sa_code_size() const override {
        return code_size();
    }

    /// the CPU codec's sa_encode / sa_decode (the same codes as add()
    /// stores); x and bytes on the host or in device memory
    void sa_encode(idx_t n, const float* x, uint8_t* bytes) const override;
    void sa_decode(idx_t n, const uint8_t* bytes, float* x) const override;

    size_t code_size() const;

    /// codes of vectors [i0, i0 + n) to the host
    void get_codes(idx_t i0, idx_t n, uint8_t* out) const;

    /// device bytes held by this index (codes, tables, search buffers)
    size_t getDeviceMemoryUsage() const;

    int getDevice() const {
        return config_.device;
    }

    /// the codec (the CPU index's tq; codec() on the IVF index too)
    const TurboQuantizer& codec() const {
        return codec_.tq;
    }

    /// a copy (Python would otherwise write through a view, past the
    /// setters' checks)
    GpuIndexTurboQuantConfig config() const {
        return config_;
    }

    /// throws unless m is one of GpuScanMode's values
    void set_scan_mode(GpuScanMode m);

    void set_direct_max_ntotal(int64_t n) {
        config_.direct_max_ntotal = n;
    }

    void set_collect_timing(bool on) {
        config_.collect_timing = on;
    }

    const GpuSearchStats& last_search_stats() const {
        return stats_;
    }

   private:
    struct Scratch;
    struct KeptCodes;

    /// throws unless p points into this index's device memory
    void check_on_device(const void* p, const char* what) const;

    GpuResources* res_;
    GpuIndexTurboQuantConfig config_;
    IndexTurboQuant codec_; ///< the CPU codec; holds no codes
    std::unique_ptr<DeviceCodec> dcodec_;
    DeviceBuffer<uint8_t> codes_;
    int num_sms_ = 0;
    mutable std::mutex search_mutex_;
    mutable std::unique_ptr<Scratch> scratch_;
    mutable GpuSearchStats stats_;

    /// dcodec_ = dc (null: made from codec_), then the device's SM count
    /// and the search scratch
    void init_device_state(std::unique_ptr<DeviceCodec> dc = nullptr);
    cudaStream_t stream() const;
    void grow_codes(idx_t n_total);
    /// search() on host pointers, n >= 0 (staged_search checks it)
    void search_host(
        idx_t n,
        const float* x,
        idx_t k,
        float* distances,
        idx_t* labels,
        const faiss::SearchParameters* params) const;

    void search_chunk(
        const TQQueries& q,
        idx_t q0,
        int nq,
        int k,
        bool tc,
        const KeptCodes* kept, ///< the search's selector, or null
        float* distances,
        idx_t* labels) const;

    /// the codes sel keeps, on the device (in the scratch) and the host
    void upload_kept(const faiss::IDSelector& sel, KeptCodes& kept) const;
};

} // namespace gpu
} // namespace faiss_turbo
