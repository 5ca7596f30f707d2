// The devbuild's shared library (FAISS_TURBO_GPU_DEVBUILD) is made of whole
// archives; CMake wants one source of its own.
namespace faiss_turbo {
namespace gpu {
int devbuild_bundle_anchor = 0;
} // namespace gpu
} // namespace faiss_turbo
