/**
 * Checked-section framing of faiss-turbo files (the format is described at
 * the top of faiss_turbo/index_io.h).
 *
 * A file is a sequence of sections; each has a 32-byte header
 *   tag (fourcc) | reserved u32 = 0 | payload size u64 |
 *   xxhash64(payload) u64 | xxhash64(header bytes 0..23) u64
 * then the payload, zero-padded to a multiple of 8 bytes. The reader checks
 * the header hash before it trusts the size, reads the payload in bounded
 * chunks (so a forged size cannot allocate more than the bytes actually
 * present), and checks the payload hash before any parser sees a byte.
 *
 * Built with FAISS_TURBO_IO_FUZZING, the hashes are not compared, so that a
 * fuzzer reaches the parsers behind them.
 */
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <type_traits>
#include <vector>

#include <faiss/impl/FaissAssert.h>
#include <faiss/impl/io.h>

namespace faiss_turbo {
namespace io {

static_assert(
        __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
        "faiss-turbo files are little-endian; a big-endian reader would need "
        "byte swaps");

/// "ABCD" -> the u32 whose bytes in memory are A B C D
constexpr uint32_t fourcc(const char (&s)[5]) {
    return uint32_t((uint8_t)s[0]) | uint32_t((uint8_t)s[1]) << 8 |
           uint32_t((uint8_t)s[2]) << 16 | uint32_t((uint8_t)s[3]) << 24;
}

/// printable form of a tag, for error messages
std::string fourcc_str(uint32_t tag);

/// XXH64 (Collet), streaming
struct XXHash64 {
    explicit XXHash64(uint64_t seed = 0);
    void update(const void* data, size_t n);
    uint64_t digest() const;

   private:
    uint64_t v[4];
    uint64_t seed;
    uint64_t total = 0;
    uint8_t buf[32];
    size_t nbuf = 0;
};

uint64_t xxhash64(const void* data, size_t n, uint64_t seed = 0);

constexpr size_t kSectionHeaderSize = 32;
/// no section may claim more (1 TiB): guards size arithmetic
constexpr uint64_t kMaxSectionSize = uint64_t(1) << 40;

/// little-endian scalars and arrays appended to a byte buffer
struct PayloadWriter {
    std::vector<uint8_t> buf;

    template <class T> void put(T v) {
        static_assert(std::is_arithmetic<T>::value, "scalars only");
        put_array(&v, 1);
    }

    template <class T> void put_array(const T* p, size_t n) {
        static_assert(std::is_arithmetic<T>::value, "scalars only");
        const uint8_t* b = reinterpret_cast<const uint8_t*>(p);
        buf.insert(buf.end(), b, b + n * sizeof(T));
    }

    /// array preceded by its u64 element count
    template <class T> void put_vector(const std::vector<T>& v) {
        put<uint64_t>(v.size());
        put_array(v.data(), v.size());
    }
};

/// bounds-checked reads from one section's payload: every count is compared
/// with the bytes left before anything is allocated
struct PayloadReader {
    const uint8_t* p = nullptr;
    size_t size = 0;
    size_t pos = 0;
    std::string what; ///< section name, for messages

    PayloadReader(const uint8_t* p, size_t size, std::string what);

    size_t remaining() const {
        return size - pos;
    }

    template <class T> T get() {
        T v;
        get_array(&v, 1);
        return v;
    }

    template <class T> void get_array(T* out, size_t n) {
        static_assert(std::is_arithmetic<T>::value, "scalars only");
        check_available(n, sizeof(T));
        if (n == 0) {
            return; // out may be null (an empty vector's data())
        }
        memcpy(out, p + pos, n * sizeof(T));
        pos += n * sizeof(T);
    }

    /// n elements into out (resized only after the bound check)
    template <class T> void get_vector(std::vector<T>& out, size_t n) {
        check_available(n, sizeof(T));
        out.resize(n);
        get_array(out.data(), n);
    }

    /// a vector preceded by its u64 count, which must not exceed max_n
    template <class T>
    void get_counted_vector(std::vector<T>& out, uint64_t max_n) {
        uint64_t n = get<uint64_t>();
        FAISS_THROW_IF_NOT_FMT(
                n <= max_n,
                "faiss-turbo read: %s: %zd elements, at most %zd allowed",
                what.c_str(),
                (size_t)n,
                (size_t)max_n);
        get_vector(out, n);
    }

    /// throws unless n elements of elem_size bytes remain
    void check_available(uint64_t n, size_t elem_size) const;

    /// throws unless the whole payload was consumed
    void expect_end() const;
};

/// writes sections to a FAISS IOWriter
struct SectionWriter {
    faiss::IOWriter* w;
    size_t nsections = 0;
    uint64_t offset = 0;

    explicit SectionWriter(faiss::IOWriter* w) : w(w) {}

    struct Chunk {
        const void* data;
        size_t size;
    };

    /// one section whose payload is the concatenation of chunks (written
    /// from where they are, without a copy)
    void write(uint32_t tag, const std::vector<Chunk>& chunks);

    void write(uint32_t tag, const void* data, size_t size) {
        write(tag, {{data, size}});
    }

    void write(uint32_t tag, const PayloadWriter& pw) {
        write(tag, pw.buf.data(), pw.buf.size());
    }

   private:
    void raw(const void* data, size_t size);
};

struct Section {
    uint32_t tag = 0;
    size_t index = 0;    ///< position in the file, 0-based
    uint64_t offset = 0; ///< of the header in the stream
    std::vector<uint8_t> data;

    std::string name() const; ///< "section 3 'CODE'"

    PayloadReader reader() const {
        return PayloadReader(data.data(), data.size(), name());
    }
};

/// reads and verifies sections from a FAISS IOReader
struct SectionReader {
    faiss::IOReader* r;
    /// bytes the stream still holds, when known (UINT64_MAX otherwise): a
    /// larger size claim fails at once with a clear message
    uint64_t bytes_left;
    size_t nsections = 0;
    uint64_t offset = 0;

    explicit SectionReader(faiss::IOReader* r, uint64_t bytes_left = UINT64_MAX)
        : r(r), bytes_left(bytes_left) {}

    /// the next section, whatever its tag
    Section next();

    /// the next section, which must carry tag (what: for the message)
    Section next(uint32_t tag, const char* what);

   private:
    /// exactly n bytes, or a "truncated" exception naming what
    void raw(void* dst, size_t n, const std::string& what);
};

/// IOReader over a caller-owned buffer (no copy, unlike VectorIOReader)
struct MemoryIOReader : faiss::IOReader {
    const uint8_t* p;
    size_t size;
    size_t pos = 0;

    MemoryIOReader(const uint8_t* p, size_t size) : p(p), size(size) {}

    size_t operator()(void* ptr, size_t size, size_t nitems) override;
};

/// IOReader that first returns bytes already taken from another reader
/// (used to hand a plain FAISS file to faiss::read_index after peeking)
struct PrefixedIOReader : faiss::IOReader {
    std::vector<uint8_t> prefix;
    size_t pos = 0;
    faiss::IOReader* rest;

    PrefixedIOReader(std::vector<uint8_t> prefix, faiss::IOReader* rest)
        : prefix(std::move(prefix)), rest(rest) {}

    size_t operator()(void* ptr, size_t size, size_t nitems) override;
};

} // namespace io
} // namespace faiss_turbo
