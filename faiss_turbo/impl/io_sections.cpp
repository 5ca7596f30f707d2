#include <faiss_turbo/impl/io_sections.h>

#include <algorithm>

namespace faiss_turbo {
namespace io {

std::string fourcc_str(uint32_t tag) {
    std::string s;
    for (int i = 0; i < 4; i++) {
        char c = (char)((tag >> (8 * i)) & 0xff);
        if (c >= 32 && c < 127) {
            s += c;
        } else {
            char hex[8];
            snprintf(hex, sizeof(hex), "\\x%02x", (unsigned)(uint8_t)c);
            s += hex;
        }
    }
    return s;
}

/*************************************************************
 * XXH64, from the public specification (github.com/Cyan4973/xxHash,
 * doc/xxhash_spec.md)
 *************************************************************/

namespace {

constexpr uint64_t P1 = 0x9E3779B185EBCA87ULL;
constexpr uint64_t P2 = 0xC2B2AE3D27D4EB4FULL;
constexpr uint64_t P3 = 0x165667B19E3779F9ULL;
constexpr uint64_t P4 = 0x85EBCA77C2B2AE63ULL;
constexpr uint64_t P5 = 0x27D4EB2F165667C5ULL;

inline uint64_t rotl(uint64_t x, int r) {
    return (x << r) | (x >> (64 - r));
}

inline uint64_t read64(const uint8_t* p) {
    uint64_t v;
    memcpy(&v, p, 8);
    return v;
}

inline uint32_t read32(const uint8_t* p) {
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}

inline uint64_t xxh_round(uint64_t acc, uint64_t input) {
    acc += input * P2;
    acc = rotl(acc, 31);
    return acc * P1;
}

inline uint64_t xxh_merge(uint64_t acc, uint64_t v) {
    acc ^= xxh_round(0, v);
    return acc * P1 + P4;
}

} // namespace

XXHash64::XXHash64(uint64_t s) : seed(s) {
    v[0] = seed + P1 + P2;
    v[1] = seed + P2;
    v[2] = seed;
    v[3] = seed - P1;
}

void XXHash64::update(const void* data, size_t n) {
    if (n == 0) {
        return; // data may be null (an empty vector's data())
    }
    const uint8_t* p = static_cast<const uint8_t*>(data);
    total += n;
    if (nbuf + n < 32) {
        memcpy(buf + nbuf, p, n);
        nbuf += n;
        return;
    }
    if (nbuf > 0) {
        size_t fill = 32 - nbuf;
        memcpy(buf + nbuf, p, fill);
        for (int i = 0; i < 4; i++) {
            v[i] = xxh_round(v[i], read64(buf + 8 * i));
        }
        p += fill;
        n -= fill;
        nbuf = 0;
    }
    for (; n >= 32; p += 32, n -= 32) {
        for (int i = 0; i < 4; i++) {
            v[i] = xxh_round(v[i], read64(p + 8 * i));
        }
    }
    memcpy(buf, p, n);
    nbuf = n;
}

uint64_t XXHash64::digest() const {
    uint64_t h;
    if (total >= 32) {
        h = rotl(v[0], 1) + rotl(v[1], 7) + rotl(v[2], 12) + rotl(v[3], 18);
        for (int i = 0; i < 4; i++) {
            h = xxh_merge(h, v[i]);
        }
    } else {
        h = seed + P5;
    }
    h += total;
    const uint8_t* p = buf;
    size_t n = nbuf;
    for (; n >= 8; p += 8, n -= 8) {
        h ^= xxh_round(0, read64(p));
        h = rotl(h, 27) * P1 + P4;
    }
    if (n >= 4) {
        h ^= (uint64_t)read32(p) * P1;
        h = rotl(h, 23) * P2 + P3;
        p += 4;
        n -= 4;
    }
    for (; n > 0; p++, n--) {
        h ^= (*p) * P5;
        h = rotl(h, 11) * P1;
    }
    h ^= h >> 33;
    h *= P2;
    h ^= h >> 29;
    h *= P3;
    h ^= h >> 32;
    return h;
}

uint64_t xxhash64(const void* data, size_t n, uint64_t seed) {
    XXHash64 h(seed);
    h.update(data, n);
    return h.digest();
}

/*************************************************************
 * Payloads
 *************************************************************/

PayloadReader::PayloadReader(const uint8_t* p, size_t size, std::string what)
    : p(p), size(size), what(std::move(what)) {}

void PayloadReader::check_available(uint64_t n, size_t elem_size) const {
    FAISS_THROW_IF_NOT_FMT(
            n <= remaining() / elem_size,
            "faiss-turbo read: %s is too short: %zd more items of %zd bytes "
            "needed at byte %zd, %zd bytes left (corrupted or truncated file)",
            what.c_str(),
            (size_t)n,
            elem_size,
            pos,
            remaining());
}

void PayloadReader::expect_end() const {
    FAISS_THROW_IF_NOT_FMT(
            pos == size,
            "faiss-turbo read: %s has %zd unexpected trailing bytes",
            what.c_str(),
            remaining());
}

/*************************************************************
 * Section writer
 *************************************************************/

namespace {

constexpr uint8_t kZeros[8] = {0, 0, 0, 0, 0, 0, 0, 0};

size_t padding_of(uint64_t size) {
    return (8 - size % 8) % 8;
}

void put_u32(uint8_t* p, uint32_t v) {
    memcpy(p, &v, 4);
}

void put_u64(uint8_t* p, uint64_t v) {
    memcpy(p, &v, 8);
}

} // namespace

void SectionWriter::raw(const void* data, size_t size) {
    if (size == 0) {
        return;
    }
    size_t written = (*w)(data, 1, size);
    FAISS_THROW_IF_NOT_FMT(
            written == size,
            "faiss-turbo write: %s: wrote %zd of %zd bytes (disk full?)",
            w->name.c_str(),
            written,
            size);
    offset += size;
}

void SectionWriter::write(uint32_t tag, const std::vector<Chunk>& chunks) {
    XXHash64 hash;
    uint64_t size = 0;
    for (const Chunk& c : chunks) {
        hash.update(c.data, c.size);
        size += c.size;
    }
    FAISS_THROW_IF_NOT_FMT(
            size <= kMaxSectionSize,
            "faiss-turbo write: section '%s' of %zd bytes is too large",
            fourcc_str(tag).c_str(),
            (size_t)size);
    uint8_t h[kSectionHeaderSize];
    put_u32(h, tag);
    put_u32(h + 4, 0);
    put_u64(h + 8, size);
    put_u64(h + 16, hash.digest());
    put_u64(h + 24, xxhash64(h, 24));
    raw(h, sizeof(h));
    for (const Chunk& c : chunks) {
        raw(c.data, c.size);
    }
    raw(kZeros, padding_of(size));
    nsections++;
}

/*************************************************************
 * Section reader
 *************************************************************/

std::string Section::name() const {
    char buf[64];
    snprintf(
            buf,
            sizeof(buf),
            "section %zd '%s'",
            index,
            fourcc_str(tag).c_str());
    return buf;
}

void SectionReader::raw(void* dst, size_t n, const std::string& what) {
    size_t got = n == 0 ? 0 : (*r)(dst, 1, n);
    FAISS_THROW_IF_NOT_FMT(
            got == n,
            "faiss-turbo read: truncated file %s: %s ends after %zd of %zd "
            "bytes (offset %zd)",
            r->name.c_str(),
            what.c_str(),
            got,
            n,
            (size_t)offset);
    offset += n;
    if (bytes_left != UINT64_MAX) {
        bytes_left -= n;
    }
}

namespace {

/// payloads are read in pieces of this size, so memory follows the bytes
/// actually present rather than the size the header claims
constexpr size_t kReadChunk = size_t(16) << 20;

bool checksums_enabled() {
#ifdef FAISS_TURBO_IO_FUZZING
    return false;
#else
    return true;
#endif
}

} // namespace

Section SectionReader::next() {
    Section s;
    s.index = nsections;
    s.offset = offset;
    char what[64];
    snprintf(what, sizeof(what), "the header of section %zd", nsections);
    uint8_t h[kSectionHeaderSize];
    raw(h, sizeof(h), what);
    uint32_t reserved;
    uint64_t size, payload_hash, header_hash;
    memcpy(&s.tag, h, 4);
    memcpy(&reserved, h + 4, 4);
    memcpy(&size, h + 8, 8);
    memcpy(&payload_hash, h + 16, 8);
    memcpy(&header_hash, h + 24, 8);
    FAISS_THROW_IF_NOT_FMT(
            !checksums_enabled() || header_hash == xxhash64(h, 24),
            "faiss-turbo read: %s: header checksum mismatch at offset %zd "
            "(corrupted file, or not a faiss-turbo file)",
            s.name().c_str(),
            (size_t)s.offset);
    FAISS_THROW_IF_NOT_FMT(
            reserved == 0,
            "faiss-turbo read: %s: unsupported header flags 0x%x",
            s.name().c_str(),
            reserved);
    uint64_t padded = size + padding_of(size);
    FAISS_THROW_IF_NOT_FMT(
            size <= kMaxSectionSize && padded <= bytes_left,
            "faiss-turbo read: %s claims %zd bytes, more than the %s "
            "(truncated or corrupted file)",
            s.name().c_str(),
            (size_t)size,
            bytes_left == UINT64_MAX ? "format allows"
                                     : "rest of the input holds");
    std::string pname = s.name() + " payload";
    if (bytes_left != UINT64_MAX) {
        s.data.reserve(size); // bounded by the bytes really there
    }
    XXHash64 hash;
    for (uint64_t done = 0; done < size;) {
        size_t n = (size_t)std::min<uint64_t>(kReadChunk, size - done);
        s.data.resize(done + n);
        raw(s.data.data() + done, n, pname);
        hash.update(s.data.data() + done, n);
        done += n;
    }
    uint8_t pad[8];
    size_t npad = padding_of(size);
    raw(pad, npad, pname + " padding");
    FAISS_THROW_IF_NOT_FMT(
            !checksums_enabled() || hash.digest() == payload_hash,
            "faiss-turbo read: %s: payload checksum mismatch (corrupted "
            "file)",
            s.name().c_str());
    FAISS_THROW_IF_NOT_FMT(
            memcmp(pad, kZeros, npad) == 0,
            "faiss-turbo read: %s: nonzero padding",
            s.name().c_str());
    nsections++;
    return s;
}

Section SectionReader::next(uint32_t tag, const char* what) {
    Section s = next();
    FAISS_THROW_IF_NOT_FMT(
            s.tag == tag,
            "faiss-turbo read: expected %s (section '%s') but found %s "
            "(corrupted file or unsupported layout)",
            what,
            fourcc_str(tag).c_str(),
            s.name().c_str());
    return s;
}

/*************************************************************
 * Readers
 *************************************************************/

size_t MemoryIOReader::operator()(void* ptr, size_t isize, size_t nitems) {
    if (isize == 0 || nitems == 0) {
        return 0;
    }
    size_t n = std::min(nitems, (size - pos) / isize);
    if (n == 0) {
        return 0; // p may be null for an empty buffer
    }
    memcpy(ptr, p + pos, n * isize);
    pos += n * isize;
    return n;
}

size_t PrefixedIOReader::operator()(void* ptr, size_t isize, size_t nitems) {
    if (isize == 0 || nitems == 0) {
        return 0;
    }
    FAISS_THROW_IF_NOT_MSG(
            nitems <= SIZE_MAX / isize, "PrefixedIOReader: read too large");
    size_t want = isize * nitems;
    uint8_t* dst = static_cast<uint8_t*>(ptr);
    size_t n = std::min(want, prefix.size() - pos);
    if (n > 0) {
        memcpy(dst, prefix.data() + pos, n);
    }
    pos += n;
    if (n < want) {
        n += (*rest)(dst + n, 1, want - n);
    }
    // a partial trailing item is not returned (as fread)
    return n / isize;
}

} // namespace io
} // namespace faiss_turbo
