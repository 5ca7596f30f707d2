#include <gpu/impl/DeviceCodec.h>

#include <algorithm>
#include <climits>
#include <cmath>
#include <vector>

#include <faiss_turbo/impl/coord_rules.h>
#include <faiss_turbo/impl/kernels.h>

namespace faiss_turbo {
namespace gpu {

namespace {

// vectors per encode batch of the dense path (its buffers hold 4 of them)
constexpr size_t kBatchFloats = size_t(1) << 24;

template <typename T>
void upload(
    DeviceBuffer<T>& buf,
    const std::vector<T>& v,
    GpuResources* res,
    int device,
    const char* what) {
    buf = DeviceBuffer<T>(res, device, what);
    buf.reserve_discard(std::max<size_t>(v.size(), 1));
    if (!v.empty()) {
        TQ_CUDA_CHECK(cudaMemcpy(
            buf.data(),
            v.data(),
            v.size() * sizeof(T),
            cudaMemcpyHostToDevice));
    }
}

} // namespace

DeviceCodec::DeviceCodec(
    GpuResources* res, int device, const TurboQuantizer& tq)
    : res_(res), device_(device), d_(tq.d) {
    tq.check_tables();
    FAISS_THROW_IF_NOT_FMT(
        tq.d <= (size_t)kMaxGpuDim,
        "GPU TurboQuant supports d <= %d, not d=%zd",
        kMaxGpuDim,
        tq.d);
    DeviceScope scope(device);
    CodecView& c = view_;
    c.d = (int)tq.d;
    c.prod = tq.variant == TQVariant::PROD;
    c.debiased = tq.debiased;
    c.n_hi = (int)tq.n_hi;
    c.b_hi = tq.b_hi;
    c.b_lo = tq.b_lo;
    c.mse_bytes = (int)tq.mse_bytes;
    c.qjl_bytes = (int)tq.qjl_bytes;
    c.code_size = (int)tq.code_size;
    c.n_floats = tq.n_floats();
    c.has_aux = tq.has_aux();
    c.ip_offset = tq.ip_offset;
    c.kc = (c.d + 15) / 16 * 16;
    c.kp = c.prod ? 2 * c.kc : c.kc;
    c.qjl_factor = (float)(1.2533141373155003 / tq.d); // sqrt(pi/2) / d
    upload(cent_hi_, tq.cb_hi->centroids, res, device, "centroids");
    upload(cent_lo_, tq.cb_lo->centroids, res, device, "centroids");
    upload(thr_hi_, tq.cb_hi->thresholds, res, device, "thresholds");
    upload(thr_lo_, tq.cb_lo->thresholds, res, device, "thresholds");
    c.cent_hi = cent_hi_.data();
    c.cent_lo = cent_lo_.data();
    c.thr_hi = thr_hi_.data();
    c.thr_lo = thr_lo_.data();

    ep_.c = c;
    if (!tq.mean.empty()) {
        upload(mean_, tq.mean, res, device, "mean");
        ep_.mean = mean_.data();
    }
    if (auto h = dynamic_cast<const HadamardRotation*>(tq.rotation.get())) {
        upload_hadamard(*h, rot_signs_, rot_perms_, ep_.rot);
        ep_.rot_hadamard = true;
    } else {
        auto dr = dynamic_cast<const DenseRotation*>(tq.rotation.get());
        FAISS_THROW_IF_NOT_MSG(dr, "GPU TurboQuant: unknown rotation type");
        upload(dense_rot_m_, dr->matrix, res, device, "rotation matrix");
        dense_rot_ = true;
    }
    if (c.prod) {
        if (tq.qjl->type == QJLType::HADAMARD) {
            upload_hadamard(*tq.qjl->had, qjl_signs_, qjl_perms_, ep_.qjl);
            ep_.qjl_hadamard = true;
            ep_.qjl_scale = std::sqrt((float)tq.d);
        } else {
            upload(gauss_qjl_m_, tq.qjl->gaussian, res, device, "QJL matrix");
            gaussian_qjl_ = true;
        }
    }
    bad_flag_ = DeviceBuffer<int>(res, device, "encode flag");
    bad_flag_.reserve_discard(1);
    xc_ = DeviceBuffer<float>(res, device, "encode batch");
    y_ = DeviceBuffer<float>(res, device, "encode batch");
    resid_ = DeviceBuffer<float>(res, device, "encode batch");
    sr_ = DeviceBuffer<float>(res, device, "encode batch");
    // cudaMemcpy from pageable memory may return before its copy lands,
    // and the kernels run on the resources' non-blocking stream, which
    // does not wait for it
    TQ_CUDA_CHECK(cudaDeviceSynchronize());
}

void DeviceCodec::upload_hadamard(
    const HadamardRotation& h,
    DeviceBuffer<float>& signs,
    DeviceBuffer<uint32_t>& perms,
    HadamardView& view) {
    h.check();
    upload(signs, h.signs, res_, device_, "Hadamard signs");
    upload(perms, h.perms, res_, device_, "Hadamard permutations");
    view.nrounds = h.nrounds;
    auto blocks = h.blocks();
    FAISS_THROW_IF_NOT_MSG(
        blocks.size() <= (size_t)kMaxHadamardBlocks,
        "Hadamard rotation: too many blocks for the GPU");
    view.nblocks = (int)blocks.size();
    for (size_t b = 0; b < blocks.size(); b++) {
        view.blk_off[b] = (int)blocks[b].first;
        view.blk_size[b] = (int)blocks[b].second;
        // the CPU's scale, computed the CPU's way
        view.blk_scale[b] = (float)(1.0 / std::sqrt((double)blocks[b].second));
    }
    view.signs = signs.data();
    view.perms = perms.data();
}

size_t DeviceCodec::table_bytes() const {
    size_t b = 0;
    b += (cent_hi_.capacity() + cent_lo_.capacity() + thr_hi_.capacity() +
          thr_lo_.capacity() + mean_.capacity()) *
         sizeof(float);
    b += (rot_signs_.capacity() + qjl_signs_.capacity() +
          dense_rot_m_.capacity() + gauss_qjl_m_.capacity()) *
         sizeof(float);
    b += (rot_perms_.capacity() + qjl_perms_.capacity()) * sizeof(uint32_t);
    b += (xc_.capacity() + y_.capacity() + resid_.capacity() + sr_.capacity()) *
         sizeof(float);
    return b;
}

void DeviceCodec::encode(
    size_t n,
    const float* x,
    uint8_t* codes,
    cudaStream_t s,
    const float* origins,
    size_t first) {
    if (n == 0) {
        return;
    }
    DeviceScope scope(device_);
    const size_t d = d_;
    const bool need_resid = gaussian_qjl_;
    size_t batch = n;
    if (dense_rot_ || need_resid) {
        batch = std::min(n, std::max<size_t>(1024, kBatchFloats / d));
        if (dense_rot_) {
            y_.reserve_discard(batch * d);
            if (ep_.mean) {
                xc_.reserve_discard(batch * d);
            }
        }
        if (need_resid) {
            resid_.reserve_discard(batch * d);
            sr_.reserve_discard(batch * d);
        }
    }
    TQ_CUDA_CHECK(cudaMemsetAsync(bad_flag_.data(), 0, sizeof(int), s));
    for (size_t i0 = 0; i0 < n; i0 += batch) {
        size_t nb = std::min(batch, n - i0);
        const float* xb = x + i0 * d;
        uint8_t* cb = codes + i0 * view_.code_size;
        const float* y = nullptr;
        if (dense_rot_) {
            const float* xin = xb;
            if (ep_.mean) {
                launch_center(nb, (int)d, xb, ep_.mean, xc_.data(), s);
                xin = xc_.data();
            }
            launch_matmul_rows(
                nb, (int)d, xin, dense_rot_m_.data(), y_.data(), s);
            y = y_.data();
        }
        EncodeParams ep = ep_;
        ep.origins = origins ? origins + i0 * d : nullptr;
        ep.first = i0;
        launch_encode(ep, nb, xb, y, cb, resid_.data(), bad_flag_.data(), s);
        if (need_resid) {
            launch_matmul_rows(
                nb, (int)d, resid_.data(), gauss_qjl_m_.data(), sr_.data(), s);
            launch_pack_signs(view_, nb, sr_.data(), cb, s);
        }
    }
    int bad = 0;
    TQ_CUDA_CHECK(cudaMemcpyAsync(
        &bad, bad_flag_.data(), sizeof(int), cudaMemcpyDeviceToHost, s));
    TQ_CUDA_CHECK(cudaStreamSynchronize(s));
    if (bad) {
        throw_unencodable(x, (size_t)(INT_MAX - bad), first, s);
    }
}

void DeviceCodec::throw_unencodable(
    const float* x,
    size_t i,
    size_t first,
    cudaStream_t s) const {
    // the CPU's messages: a NaN or Inf in the input, else an overflow
    std::vector<float> row(d_);
    TQ_CUDA_CHECK(cudaMemcpyAsync(
        row.data(),
        x + i * d_,
        d_ * sizeof(float),
        cudaMemcpyDeviceToHost,
        s));
    TQ_CUDA_CHECK(cudaStreamSynchronize(s));
    check_finite(
        1, d_, row.data(), "GPU TurboQuant encode", "vector", first + i);
    FAISS_THROW_FMT(
        "GPU TurboQuant encode: vector %zd is too long for float (its norm, "
        "its difference to the mean, its rotation or a float of its code "
        "overflows)",
        first + i);
}

ApproxQueryRows approx_query_rows(
    const CodecView& c,
    const TQQueries& q,
    size_t q0,
    int nq,
    size_t d) {
    ApproxQueryRows r;
    r.a.assign((size_t)nq * c.kp, 0.0f);
    r.ynorm.resize(nq);
    r.anorm.resize(nq);
    for (int i = 0; i < nq; i++) {
        const float* yi = q.y.data() + (q0 + i) * d;
        double n2 = 0;
        for (size_t j = 0; j < d; j++) {
            n2 += (double)yi[j] * yi[j];
        }
        float nrm = (float)std::sqrt(n2);
        float inv = nrm > 0 ? 1.0f / nrm : 0.0f;
        float* ai = r.a.data() + (size_t)i * c.kp;
        for (size_t j = 0; j < d; j++) {
            ai[j] = scale_coord(yi[j], nrm, inv);
            if (c.prod) {
                float sy = c.qjl_factor * q.sy[(q0 + i) * d + j];
                ai[c.kc + j] = scale_coord(sy, nrm, inv);
            }
        }
        double a2 = 0;
        for (int j = 0; j < c.kp; j++) {
            a2 += (double)ai[j] * ai[j];
        }
        r.ynorm[i] = nrm;
        r.anorm[i] = (float)std::sqrt(a2) * 1.0001f;
    }
    return r;
}

} // namespace gpu
} // namespace faiss_turbo
