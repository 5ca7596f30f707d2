# faiss-turbo: `make test` and `make demo` install what is missing, build and
# run. Everything Python runs with Debian's /usr/bin/python3 (python3-faiss).

BUILD ?= build
JOBS ?= 2
PYTHON := /usr/bin/python3
CMAKE_FLAGS ?=

.PHONY: all setup build test test-gpu-emulated demo clean format

all: build

setup:
	@bash scripts/setup.sh

$(BUILD)/CMakeCache.txt: CMakeLists.txt | setup
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=Release \
	  -DPython3_EXECUTABLE=$(PYTHON) $(CMAKE_FLAGS)

build: setup $(BUILD)/CMakeCache.txt
	cmake --build $(BUILD) -j $(JOBS)

test: build
	cd $(BUILD) && ctest --output-on-failure -j 1
	$(MAKE) test-gpu-emulated

# The GPU classes from Python on a machine without a GPU: a second build
# whose GPU kernels are emulated on the CPU (FAISS_TURBO_GPU_EMULATION,
# gpu/README.md), only its Python module, the GPU binding tests there, and
# the FAISS-GPU resources adapter's test. Without CUDA's toolkit the module
# has no GPU classes and they skip, and the adapter's test is not built.
EMU_BUILD ?= $(BUILD)-gpu-emulated
test-gpu-emulated: setup
	cmake -S . -B $(EMU_BUILD) -DCMAKE_BUILD_TYPE=Release \
	  -DPython3_EXECUTABLE=$(PYTHON) -DFAISS_TURBO_ENABLE_TESTS=OFF \
	  -DFAISS_TURBO_GPU_EMULATION=ON $(CMAKE_FLAGS) >/dev/null
	cmake --build $(EMU_BUILD) -j $(JOBS) \
	  --target swigfaiss_turbo faiss_turbo_python_files
	@if cmake --build $(EMU_BUILD) --target help | \
	    grep test_faiss_gpu_resources_emulated >/dev/null; then \
	  cmake --build $(EMU_BUILD) -j $(JOBS) \
	    --target test_faiss_gpu_resources_emulated && \
	  OMP_NUM_THREADS=2 $(EMU_BUILD)/gpu/test_faiss_gpu_resources_emulated; \
	else \
	  echo "FAISS resources adapter test not built (no CUDA toolkit or" \
	    "GTest, or FAISS has its own GPU module)"; \
	fi
	PYTHONPATH=$(EMU_BUILD)/python OMP_NUM_THREADS=2 TQ_GPU_EMULATED_RUN=1 \
	  $(PYTHON) -m pytest -q -p no:cacheprovider tests/python/test_gpu_bindings.py

demo: build
	PYTHONPATH=$(BUILD)/python $(PYTHON) bench/demo.py

format:
	clang-format -i faiss_turbo/*.h faiss_turbo/*.cpp faiss_turbo/impl/*.h \
	  faiss_turbo/impl/*.cpp faiss_turbo/impl/simd/*.h \
	  faiss_turbo/impl/simd/*.cpp tests/*.cpp tests/*.h tests/golden/*.h \
	  tests/golden/*.cpp fuzz/*.cpp fuzz/*.h bench/*.cpp

clean:
	rm -rf $(BUILD) $(EMU_BUILD) $(BUILD)-fuzz $(BUILD)-sanitize
