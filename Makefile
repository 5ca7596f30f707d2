# faiss-turbo: `make test` and `make demo` install what is missing, build and
# run. Everything Python runs with Debian's /usr/bin/python3 (python3-faiss).

BUILD ?= build
JOBS ?= 2
PYTHON := /usr/bin/python3
CMAKE_FLAGS ?=

.PHONY: all setup build test demo clean format

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

demo: build
	PYTHONPATH=$(BUILD)/python $(PYTHON) bench/demo.py

format:
	clang-format -i faiss_turbo/*.h faiss_turbo/*.cpp faiss_turbo/impl/*.h \
	  faiss_turbo/impl/*.cpp faiss_turbo/impl/simd/*.h \
	  faiss_turbo/impl/simd/*.cpp tests/*.cpp tests/*.h tests/golden/*.h \
	  tests/golden/*.cpp fuzz/*.cpp fuzz/*.h bench/*.cpp

clean:
	rm -rf $(BUILD)
