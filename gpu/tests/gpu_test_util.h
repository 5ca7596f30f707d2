/**
 * What the GPU test programs share: every GPU test skips (GTEST_SKIP) when
 * no CUDA device is visible, so CI without a GPU passes them as skipped.
 */
#pragma once

#include <gtest/gtest.h>

#include <gpu/impl/CudaUtils.h>

#define SKIP_WITHOUT_GPU()                                                     \
    do {                                                                       \
        if (faiss_turbo::gpu::getNumDevices() == 0) {                          \
            GTEST_SKIP() << "no CUDA device visible";                          \
        }                                                                      \
    } while (0)
