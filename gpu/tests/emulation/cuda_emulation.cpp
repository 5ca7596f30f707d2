/**
 * The fiber scheduler of cuda_emulation.h and stubs of the CUDA runtime and
 * cuBLAS calls the GPU indexes make: one device, host memory, synchronous
 * copies, no streams or events.
 */
#include "cuda_emulation.h"

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iterator>
#include <map>
#include <mutex>
#include <algorithm>
#include <cublas_v2.h>
#include <ucontext.h>

// AddressSanitizer on: gcc's macro, or clang's feature test
#if defined(__SANITIZE_ADDRESS__)
#define TQ_EMU_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define TQ_EMU_ASAN 1
#endif
#endif
#ifndef TQ_EMU_ASAN
#define TQ_EMU_ASAN 0
#endif

namespace emu {

struct Thread {
    ucontext_t uc;
    dim3 t;
    int lane, warp;
    bool done;
};

struct Block {
    std::vector<Thread> th;
    int n = 0, alive = 0;
    int arrived = 0, gen = 0;
    std::vector<int> w_arrived, w_gen, w_alive;
    std::vector<std::array<uint64_t, 32 * 8>> xch;
    std::vector<char> smem;
    std::function<void()> fn;
    long progress = 0;
};

Block* g_block = nullptr;
Thread* g_cur = nullptr;
dim3 g_blockIdx, g_blockDim, g_gridDim;
static ucontext_t g_main;
static std::vector<std::vector<char>> g_stacks;
const size_t kStack = 256 * 1024;

const dim3& tid() {
    return g_cur->t;
}
int lane() {
    return g_cur->lane;
}
int warp() {
    return g_cur->warp;
}
void* dyn_smem() {
    return g_block->smem.data();
}
uint64_t* xch_slot(int l) {
    return g_block->xch[g_cur->warp].data() + 8 * l;
}

static void yield() {
    swapcontext(&g_cur->uc, &g_main);
}

void block_barrier() {
    Block* b = g_block;
    int gen = b->gen;
    if (++b->arrived == b->alive) {
        b->arrived = 0;
        b->gen++;
        b->progress++;
        return;
    }
    while (b->gen == gen)
        yield();
}

void warp_barrier() {
    Block* b = g_block;
    int w = g_cur->warp;
    int gen = b->w_gen[w];
    if (++b->w_arrived[w] == b->w_alive[w]) {
        b->w_arrived[w] = 0;
        b->w_gen[w]++;
        b->progress++;
        return;
    }
    while (b->w_gen[w] == gen)
        yield();
}

static void entry() {
    g_block->fn();
    Block* b = g_block;
    Thread* t = g_cur;
    t->done = true;
    b->alive--;
    b->w_alive[t->warp]--;
    b->progress++;
    // a thread leaving can complete a barrier the others wait at
    if (b->alive > 0 && b->arrived > 0 && b->arrived == b->alive) {
        b->arrived = 0;
        b->gen++;
    }
    int w = t->warp;
    if (b->w_alive[w] > 0 && b->w_arrived[w] > 0 &&
        b->w_arrived[w] == b->w_alive[w]) {
        b->w_arrived[w] = 0;
        b->w_gen[w]++;
    }
}

// the limits of the devices the code targets (sm_80, sm_90)
const int kOptinSmem = 163 * 1024; // cudaDevAttrMaxSharedMemoryPerBlockOptin
const size_t kDefaultDynSmem = 48 * 1024;
static std::map<const void*, size_t> g_max_dyn_smem;
/// one launch at a time: the fibers' state (g_block, g_cur, the stacks) is
/// global, and host threads may launch at once (two indexes searched from
/// two threads crashed)
static std::mutex g_launch_mutex;
thread_local cudaError_t g_last_error = cudaSuccess;

cudaError_t set_max_dyn_smem(const void* kernel, int bytes) {
    if (bytes < 0 || bytes > kOptinSmem) {
        return cudaErrorInvalidValue;
    }
    std::lock_guard<std::mutex> lock(g_launch_mutex);
    g_max_dyn_smem[kernel] = (size_t)bytes;
    return cudaSuccess;
}

/// the error a device gives the launch, cudaSuccess if it runs
static cudaError_t launch_error(const void* kernel, dim3 g, dim3 b, size_t sm) {
    const size_t n = (size_t)b.x * b.y * b.z;
    if (g.x == 0 || g.y == 0 || g.z == 0 || g.x > 2147483647u ||
        g.y > 65535 || g.z > 65535 || n == 0 || n > 1024 || b.z > 64) {
        return cudaErrorInvalidConfiguration;
    }
    auto it = g_max_dyn_smem.find(kernel);
    if (sm > (it == g_max_dyn_smem.end() ? kDefaultDynSmem : it->second)) {
        return cudaErrorInvalidValue;
    }
    return cudaSuccess;
}

/** The order the fibers of a block take turns in between barriers, from
 * TQ_EMU_SCHEDULE: "forward" (the default), "reverse" (the grid's blocks
 * in reverse order too), or "shuffle" (a new order each round). A kernel
 * whose results depend on it lacks a barrier, or relies on an order of
 * threads, atomics or blocks that no device promises. */
enum class Schedule { FORWARD, REVERSE, SHUFFLE };

static Schedule schedule() {
    static const Schedule s = [] {
        const char* e = getenv("TQ_EMU_SCHEDULE");
        if (!e || !strcmp(e, "forward")) {
            return Schedule::FORWARD;
        }
        if (!strcmp(e, "reverse")) {
            return Schedule::REVERSE;
        }
        if (!strcmp(e, "shuffle")) {
            return Schedule::SHUFFLE;
        }
        fprintf(stderr,
                "emu: TQ_EMU_SCHEDULE=%s is not forward, reverse or "
                "shuffle\n",
                e);
        abort();
    }();
    return s;
}

static void shuffle(std::vector<int>& perm, uint64_t& rng) {
    for (size_t i = perm.size(); i > 1; i--) {
        rng = rng * 6364136223846793005ull + 1442695040888963407ull;
        std::swap(perm[i - 1], perm[(rng >> 33) % i]);
    }
}

/// runs block (bx, by, bz) of n threads to its end
static void run_block(
    unsigned bx,
    unsigned by,
    unsigned bz,
    dim3 block,
    int n,
    size_t smem,
    const std::function<void()>& fn) {
    static uint64_t rng = 0x9e3779b97f4a7c15ull; // one sequence per process
    const int nw = n / 32;
    Block b;
    b.n = b.alive = n;
    b.th.resize(n);
    b.w_arrived.assign(nw, 0);
    b.w_gen.assign(nw, 0);
    b.w_alive.assign(nw, 32);
    b.xch.resize(nw);
    b.smem.assign(smem + 16, (char)0xcd);
    b.fn = fn;
    g_block = &b;
    g_blockIdx = dim3(bx, by, bz);
    std::vector<int> perm(n);
    for (int i = 0; i < n; i++) {
        Thread& t = b.th[i];
        t.t = dim3(
            i % block.x, (i / block.x) % block.y, i / (block.x * block.y));
        t.lane = i % 32;
        t.warp = i / 32;
        t.done = false;
        getcontext(&t.uc);
        t.uc.uc_stack.ss_sp = g_stacks[i].data();
        t.uc.uc_stack.ss_size = kStack;
        t.uc.uc_link = &g_main;
        makecontext(&t.uc, entry, 0);
        // the turns' order (shuffle: drawn again each round)
        perm[i] = schedule() == Schedule::REVERSE ? n - 1 - i : i;
    }
    long stall = 0;
    while (b.alive > 0) {
        long before = b.progress;
        if (schedule() == Schedule::SHUFFLE) {
            shuffle(perm, rng);
        }
        for (int i : perm) {
            if (!b.th[i].done) {
                g_cur = &b.th[i];
                swapcontext(&g_main, &b.th[i].uc);
            }
        }
        if (b.progress == before && ++stall > 3) {
            fprintf(stderr, "emu: deadlock in block (%u,%u,%u)\n", bx, by, bz);
            abort();
        }
        if (b.progress != before)
            stall = 0;
    }
    g_block = nullptr;
}

void launch(
    const void* kernel,
    dim3 grid,
    dim3 block,
    size_t smem,
    std::function<void()> fn) {
    std::lock_guard<std::mutex> lock(g_launch_mutex);
    const cudaError_t err = launch_error(kernel, grid, block, smem);
    if (err != cudaSuccess) {
        g_last_error = err;
        return;
    }
    int n = block.x * block.y * block.z;
    if (n % 32 != 0) { // a limit of the emulation: whole warps only
        fprintf(stderr, "emu: block of %d threads\n", n);
        abort();
    }
    while ((int)g_stacks.size() < n)
        g_stacks.emplace_back(kStack);
    g_gridDim = grid;
    g_blockDim = block;
    // blocks in reverse order too under "reverse"
    const size_t nb = (size_t)grid.x * grid.y * grid.z;
    for (size_t ib = 0; ib < nb; ib++) {
        const size_t i = schedule() == Schedule::REVERSE ? nb - 1 - ib : ib;
        run_block(
            i % grid.x,
            i / grid.x % grid.y,
            i / ((size_t)grid.x * grid.y),
            block,
            n,
            smem,
            fn);
    }
}

} // namespace emu

void emu_ldmatrix_x4(uint32_t r[4], const void* p) {
    int l = emu::lane();
    uint64_t* me = emu::xch_slot(l);
    me[0] = (uint64_t)(uintptr_t)p;
    emu::warp_barrier();
    for (int j = 0; j < 4; j++) {
        const char* row =
            (const char*)(uintptr_t)emu::xch_slot(8 * j + l / 4)[0];
        memcpy(&r[j], row + (l % 4) * 4, 4);
    }
    emu::warp_barrier();
}

static float h2f(uint16_t h) {
    __half x;
    memcpy(&x, &h, 2);
    return __half2float(x);
}

void emu_mma_16816(float d[4], const uint32_t a[4], uint32_t b0, uint32_t b1) {
    int l = emu::lane();
    uint64_t* me = emu::xch_slot(l);
    for (int i = 0; i < 4; i++)
        me[i] = a[i];
    me[4] = b0;
    me[5] = b1;
    emu::warp_barrier();
    float A[16][16], B[16][8];
    for (int t = 0; t < 32; t++) {
        uint64_t* s = emu::xch_slot(t);
        int g = t / 4, c = (t % 4) * 2;
        for (int h = 0; h < 2; h++) {
            A[g][c + h] = h2f((uint16_t)(s[0] >> (16 * h)));
            A[g + 8][c + h] = h2f((uint16_t)(s[1] >> (16 * h)));
            A[g][c + 8 + h] = h2f((uint16_t)(s[2] >> (16 * h)));
            A[g + 8][c + 8 + h] = h2f((uint16_t)(s[3] >> (16 * h)));
            B[c + h][g] = h2f((uint16_t)(s[4] >> (16 * h)));
            B[c + 8 + h][g] = h2f((uint16_t)(s[5] >> (16 * h)));
        }
    }
    emu::warp_barrier();
    int g = l / 4, c = (l % 4) * 2;
    for (int e = 0; e < 4; e++) {
        int row = g + (e >= 2 ? 8 : 0), col = c + (e & 1);
        float s = d[e];
        for (int k = 0; k < 16; k++)
            s += A[row][k] * B[k][col];
        d[e] = s;
    }
}

// ---- CUDA runtime stubs: host memory, one device, no streams
// "device" allocations (start -> bytes), for cudaPointerGetAttributes
static std::mutex g_alloc_mutex;
static std::map<uintptr_t, size_t> g_allocs;

extern "C" {
static size_t g_used = 0;
cudaError_t cudaMalloc(void** p, size_t n) {
    // a pretend 8 GiB card, so that huge requests fail as on a GPU
    if (n > ((size_t)8 << 30)) {
        *p = nullptr;
        return cudaErrorMemoryAllocation;
    }
#if TQ_EMU_ASAN
    // exactly n bytes, so that AddressSanitizer sees a kernel reading past
    // a buffer (a device's 256-byte granularity would hide it)
    if (posix_memalign(p, 256, std::max<size_t>(n, 1)) != 0) {
        *p = nullptr;
    }
#else
    *p = aligned_alloc(256, (n + 255) / 256 * 256);
#endif
    g_used += n;
    if (*p) {
        std::lock_guard<std::mutex> lock(g_alloc_mutex);
        g_allocs[(uintptr_t)*p] = std::max<size_t>(n, 1);
    }
    return *p ? cudaSuccess : cudaErrorMemoryAllocation;
}
cudaError_t cudaFree(void* p) {
    {
        std::lock_guard<std::mutex> lock(g_alloc_mutex);
        g_allocs.erase((uintptr_t)p);
    }
    free(p);
    return cudaSuccess;
}
cudaError_t cudaPointerGetAttributes(cudaPointerAttributes* a, const void* p) {
    memset(a, 0, sizeof(*a));
    std::lock_guard<std::mutex> lock(g_alloc_mutex);
    auto it = g_allocs.upper_bound((uintptr_t)p);
    bool dev = it != g_allocs.begin() &&
            (uintptr_t)p < std::prev(it)->first + std::prev(it)->second;
    a->type = dev ? cudaMemoryTypeDevice : cudaMemoryTypeUnregistered;
    return cudaSuccess;
}
// CUDA takes empty copies and fills with any pointers (null included),
// which memcpy and memset do not
cudaError_t cudaMemcpy(void* d, const void* s, size_t n, cudaMemcpyKind) {
    if (n > 0) {
        memcpy(d, s, n);
    }
    return cudaSuccess;
}
cudaError_t cudaMemcpyAsync(
    void* d, const void* s, size_t n, cudaMemcpyKind, cudaStream_t) {
    return cudaMemcpy(d, s, n, cudaMemcpyDefault);
}
cudaError_t cudaMemset(void* d, int v, size_t n) {
    if (n > 0) {
        memset(d, v, n);
    }
    return cudaSuccess;
}
cudaError_t cudaMemsetAsync(void* d, int v, size_t n, cudaStream_t) {
    return cudaMemset(d, v, n);
}
cudaError_t cudaStreamSynchronize(cudaStream_t) {
    return cudaSuccess;
}
cudaError_t cudaStreamQuery(cudaStream_t) { // work runs when launched
    return cudaSuccess;
}
cudaError_t cudaDeviceSynchronize() {
    return cudaSuccess;
}
cudaError_t cudaStreamCreateWithFlags(cudaStream_t* s, unsigned) {
    *s = (cudaStream_t)0x1;
    return cudaSuccess;
}
cudaError_t cudaStreamDestroy(cudaStream_t) {
    return cudaSuccess;
}
cudaError_t cudaGetDeviceCount(int* n) {
    *n = 1;
    return cudaSuccess;
}
cudaError_t cudaGetDevice(int* d) {
    *d = 0;
    return cudaSuccess;
}
cudaError_t cudaSetDevice(int) {
    return cudaSuccess;
}
cudaError_t cudaGetLastError() {
    const cudaError_t e = emu::g_last_error;
    emu::g_last_error = cudaSuccess;
    return e;
}
const char* cudaGetErrorString(cudaError_t e) {
    return e == cudaSuccess                     ? "no error"
            : e == cudaErrorInvalidConfiguration ? "invalid configuration "
                                                   "argument (emulated)"
            : e == cudaErrorInvalidValue ? "invalid argument (emulated)"
                                         : "emulated error";
}
cudaError_t cudaMemGetInfo(size_t* f, size_t* t) {
    *f = (size_t)8 << 30;
    *t = (size_t)8 << 30;
    return cudaSuccess;
}
cudaError_t cudaDeviceGetAttribute(int* v, cudaDeviceAttr a, int) {
    *v = a == cudaDevAttrMultiProcessorCount                ? 2
         : a == cudaDevAttrMaxSharedMemoryPerBlockOptin ? emu::kOptinSmem
                                                        : 0;
    return cudaSuccess;
}
cudaError_t cudaEventCreate(cudaEvent_t* e) {
    *e = (cudaEvent_t)0x1;
    return cudaSuccess;
}
cudaError_t cudaEventDestroy(cudaEvent_t) {
    return cudaSuccess;
}
cudaError_t cudaEventRecord(cudaEvent_t, cudaStream_t) {
    return cudaSuccess;
}
cudaError_t cudaEventSynchronize(cudaEvent_t) {
    return cudaSuccess;
}
cudaError_t cudaEventElapsedTime(float* ms, cudaEvent_t, cudaEvent_t) {
    *ms = 0;
    return cudaSuccess;
}
cublasStatus_t cublasCreate_v2(cublasHandle_t* h) {
    *h = (cublasHandle_t)0x1;
    return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasDestroy_v2(cublasHandle_t) {
    return CUBLAS_STATUS_SUCCESS;
}
// one handle (0x1): the stream it is bound to, for tests of the binding
static cudaStream_t g_blas_stream = nullptr;
cublasStatus_t cublasSetStream_v2(cublasHandle_t, cudaStream_t s) {
    g_blas_stream = s;
    return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasGetStream_v2(cublasHandle_t, cudaStream_t* s) {
    *s = g_blas_stream;
    return CUBLAS_STATUS_SUCCESS;
}
}
