/**
 * FaissGpuResources: our indexes on a faiss::gpu::GpuResources. A fake
 * FAISS resources object (cudaMalloc behind a cap, its own stream) stands
 * in for FAISS's StandardGpuResources. Properties: the indexes give the
 * results they give on our StandardGpuResources, with the same device
 * memory; every allocation is a Device-space request ordered on FAISS's
 * stream and is given back; an allocation FAISS refuses is an exception
 * naming what needed it, and the index stays usable. Skips without a
 * device (the emulated build runs it on the CPU).
 */
#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include <faiss/impl/FaissAssert.h>

#include <faiss_turbo/IndexTurboQuant.h>
#include <faiss_turbo/index_factory.h>

#include <gpu/FaissGpuResources.h>
#include <gpu/GpuCloner.h>
#include <gpu/GpuIndexTurboQuant.h>
#include <gpu/StandardGpuResources.h>
#include <gpu/impl/CudaUtils.h>
#include <gpu/tests/gpu_test_util.h>

#include "test_util.h"

using namespace faiss_turbo;
using namespace faiss_turbo::gpu;

namespace {

/// a FAISS resources object as FAISS's would behave: one stream and
/// cuBLAS handle, cudaMalloc, a FaissException when memory runs out
class FakeFaissResources : public faiss::gpu::GpuResources {
   public:
    ~FakeFaissResources() override {
        for (auto& a : live) {
            cudaFree(a.first);
        }
        if (blas) {
            cublasDestroy(blas);
            cudaStreamDestroy(own_stream);
        }
    }

    void initializeForDevice(int) override {
        if (!blas) {
            TQ_CUDA_CHECK(cudaStreamCreateWithFlags(
                    &own_stream, cudaStreamNonBlocking));
            default_stream = own_stream;
            TQ_CUBLAS_CHECK(cublasCreate(&blas));
        }
    }
    // no `override`: older FAISS has no such member
    bool supportsBFloat16(int) {
        return false;
    }
    cublasHandle_t getBlasHandle(int device) override {
        initializeForDevice(device);
        return blas;
    }
    cudaStream_t getDefaultStream(int device) override {
        initializeForDevice(device);
        return default_stream;
    }
    void setDefaultStream(int, cudaStream_t s) override {
        default_stream = s;
    }
    std::vector<cudaStream_t> getAlternateStreams(int) override {
        return {};
    }
    void* allocMemory(const faiss::gpu::AllocRequest& req) override {
        requests.push_back(req);
        FAISS_THROW_IF_NOT_FMT(
                cap == 0 || held + req.size <= cap,
                "fake resources: alloc fail of %zd bytes",
                req.size);
        void* p = nullptr;
        TQ_CUDA_CHECK(cudaMalloc(&p, req.size));
        live[p] = req.size;
        held += req.size;
        return p;
    }
    void deallocMemory(int, void* p) override {
        auto it = live.find(p);
        FAISS_THROW_IF_NOT(it != live.end());
        // memory comes back with no work pending on it (a pool would hand
        // it out again at once)
        busy_at_dealloc += cudaStreamQuery(default_stream) != cudaSuccess;
        held -= it->second;
        live.erase(it);
        TQ_CUDA_CHECK(cudaFree(p));
    }
    size_t getTempMemoryAvailable(int) const override {
        return 0;
    }
    std::pair<void*, size_t> getPinnedMemory() override {
        return {nullptr, 0};
    }
    cudaStream_t getAsyncCopyStream(int device) override {
        return getDefaultStream(device);
    }

    cudaStream_t own_stream = nullptr, default_stream = nullptr;
    cublasHandle_t blas = nullptr;
    std::vector<faiss::gpu::AllocRequest> requests;
    std::map<void*, size_t> live;
    size_t held = 0;
    size_t cap = 0; ///< 0: none
    int busy_at_dealloc = 0;
};

class FakeProvider : public faiss::gpu::GpuResourcesProvider {
   public:
    std::shared_ptr<faiss::gpu::GpuResources> getResources() override {
        return res;
    }
    std::shared_ptr<FakeFaissResources> res =
            std::make_shared<FakeFaissResources>();
};

using tqtest::Result;
using tqtest::search;

std::vector<float> gaussian(size_t n, size_t d, uint64_t seed) {
    return tqtest::random_gaussian(n, d, seed);
}

/// the CPU index `key` (trained, filled) moved to the GPU on `res`: its
/// search results and the memory it holds there
Result
on_gpu(GpuResources& res,
       const char* key,
       const std::vector<float>& x,
       const std::vector<float>& q,
       size_t d,
       size_t* bytes) {
    std::unique_ptr<faiss::Index> cpu(index_factory(d, key));
    cpu->train(x.size() / d, x.data());
    cpu->add(x.size() / d, x.data());
    std::unique_ptr<faiss::Index> g(index_cpu_to_gpu(&res, 0, cpu.get()));
    *bytes = res.getMemoryUsage(0);
    return search(*g, q, 10);
}

TEST(FaissGpuResources, SameResultsAndMemoryAsStandard) {
    SKIP_WITHOUT_GPU();
    const size_t d = 64;
    const std::vector<float> x = gaussian(2000, d, 1), q = gaussian(7, d, 2);
    for (const char* key : {"TQmse4", "TQprod3", "IVF16,TQ4"}) {
        SCOPED_TRACE(key);
        StandardGpuResources std_res;
        FakeProvider provider;
        FaissGpuResources res(&provider);
        size_t std_bytes = 0, bytes = 0;
        const Result want = on_gpu(std_res, key, x, q, d, &std_bytes);
        const Result got = on_gpu(res, key, x, q, d, &bytes);
        EXPECT_EQ(got.I, want.I);
        EXPECT_EQ(got.D, want.D);
        EXPECT_EQ(bytes, std_bytes);
        EXPECT_GT(bytes, 0u);
        // the index is gone: all given back, through FAISS
        EXPECT_EQ(res.getMemoryUsage(0), 0u);
        EXPECT_TRUE(provider.res->live.empty());
        EXPECT_EQ(provider.res->busy_at_dealloc, 0);
        ASSERT_FALSE(provider.res->requests.empty());
        for (const auto& r : provider.res->requests) {
            EXPECT_EQ(r.device, 0);
            EXPECT_EQ(r.space, faiss::gpu::MemorySpace::Device);
            EXPECT_EQ(r.stream, provider.res->default_stream);
            EXPECT_GT(r.size, 0u);
        }
    }
}

TEST(FaissGpuResources, StreamsFollowFaiss) {
    SKIP_WITHOUT_GPU();
    FakeProvider provider;
    FaissGpuResources res(provider.getResources());
    EXPECT_EQ(res.getStream(0), provider.res->getDefaultStream(0));
    EXPECT_EQ(res.getBlasHandle(0), provider.res->blas);
    cudaStream_t other = nullptr;
    TQ_CUDA_CHECK(cudaStreamCreateWithFlags(&other, cudaStreamNonBlocking));
    if (other == provider.res->default_stream) {
        // the CPU emulation has one stream handle; its streams do nothing
        other = reinterpret_cast<cudaStream_t>(0x2);
    }
    const cudaStream_t first = provider.res->default_stream;
    provider.res->setDefaultStream(0, other);
    EXPECT_EQ(res.getStream(0), other);
    // FAISS's handle, last bound by FAISS to its own stream, now on ours
    TQ_CUBLAS_CHECK(cublasSetStream(provider.res->blas, first));
    cudaStream_t bound = nullptr;
    TQ_CUBLAS_CHECK(cublasGetStream(res.getBlasHandle(0), &bound));
    EXPECT_EQ(bound, other);
    void* p = res.allocMemory(0, 100, "a test buffer");
    EXPECT_EQ(provider.res->requests.back().stream, other);
    res.freeMemory(0, p);
    provider.res->setDefaultStream(0, first);
    if (other != reinterpret_cast<cudaStream_t>(0x2)) {
        cudaStreamDestroy(other);
    }
    EXPECT_THROW(res.getStream(getNumDevices()), faiss::FaissException);
}

TEST(FaissGpuResources, ProviderMayGoFirst) {
    SKIP_WITHOUT_GPU();
    const size_t d = 32;
    const std::vector<float> x = gaussian(300, d, 3);
    std::unique_ptr<FaissGpuResources> res;
    std::weak_ptr<FakeFaissResources> fres;
    {
        FakeProvider provider;
        fres = provider.res;
        res.reset(new FaissGpuResources(&provider));
    }
    ASSERT_FALSE(fres.expired()); // the adapter shares FAISS's object
    GpuIndexTurboQuant g(res.get(), d, 4);
    g.add(300, x.data());
    const Result r = search(g, std::vector<float>(x.begin(), x.begin() + d), 1);
    EXPECT_EQ(r.I[0], 0);
}

TEST(FaissGpuResources, RefusedAllocationIsAnException) {
    SKIP_WITHOUT_GPU();
    const size_t d = 64;
    const std::vector<float> x = gaussian(2000, d, 4);
    FakeProvider provider;
    FaissGpuResources res(&provider);
    GpuIndexTurboQuant g(&res, d, 4);
    g.add(1000, x.data());
    const std::vector<float> q(x.begin(), x.begin() + 3 * d);
    const Result before = search(g, q, 5);
    const size_t held = res.getMemoryUsage(0); // search keeps buffers too
    provider.res->cap = provider.res->held + 100;
    try {
        g.add(1000, x.data() + 1000 * d);
        FAIL() << "an add past FAISS's cap did not throw";
    } catch (const faiss::FaissException& e) {
        const std::string m = e.what();
        EXPECT_NE(m.find("out of memory"), std::string::npos) << m;
        EXPECT_NE(m.find("fake resources: alloc fail"), std::string::npos) << m;
    }
    EXPECT_EQ(g.ntotal, 1000);
    EXPECT_EQ(res.getMemoryUsage(0), held);
    provider.res->cap = 0;
    const Result after = search(g, q, 5);
    EXPECT_EQ(after.I, before.I);
    EXPECT_EQ(after.D, before.D);
    // the message names the buffer
    provider.res->cap = provider.res->held + 100;
    tqtest::throws_with(
            [&] { res.allocMemory(0, 1000, "a test buffer"); },
            "a test buffer needs 1000 bytes");
}

TEST(FaissGpuResources, BadArgumentsThrow) {
    SKIP_WITHOUT_GPU();
    EXPECT_THROW(
            FaissGpuResources((faiss::gpu::GpuResourcesProvider*)nullptr),
            faiss::FaissException);
    EXPECT_THROW(
            FaissGpuResources(std::shared_ptr<faiss::gpu::GpuResources>()),
            faiss::FaissException);
    FakeProvider provider;
    FaissGpuResources res(&provider);
    EXPECT_EQ(res.allocMemory(0, 0, "nothing"), nullptr);
    EXPECT_TRUE(provider.res->requests.empty());
    int local = 0;
    EXPECT_THROW(res.freeMemory(0, &local), faiss::FaissException);
    res.freeMemory(0, nullptr); // as cudaFree(nullptr)
}

} // namespace
