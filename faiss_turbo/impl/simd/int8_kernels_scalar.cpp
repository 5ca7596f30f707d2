/**
 * Portable int8 kernels: the reference of the SIMD ones (same integers) and
 * the path of CPUs without them.
 */
#include <faiss_turbo/impl/simd/int8_kernels.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include <faiss_turbo/impl/coord_rules.h>

namespace faiss_turbo {

size_t int8_kernel_position(const Int8Segment& s, size_t j) {
    if (!s.interleaved) {
        return j;
    }
    const size_t per = 8 / s.nbits, chunk = 32 * per;
    size_t c = j / chunk, r = j % chunk;
    return c * chunk + (r % per) * 32 + r / per;
}

int32_t int8_decode_natural(
        const Int8Segment& s,
        const uint8_t* code,
        size_t code_size,
        uint8_t* row) {
    const int b = s.nbits;
    const uint64_t mask = (1u << b) - 1;
    int32_t vsum = 0;
    size_t pos = s.bit_offset, j = 0;
    // 8 indices span b bytes (+1 when the segment starts mid-byte): one
    // 64-bit word unless b = 8 off a byte (the bit offset in a byte is the
    // same at every step), which get_bits decodes
    const bool word = (pos & 7) + 8 * b <= 64;
    for (; word && j + 8 <= s.ncoords && (pos >> 3) + 8 <= code_size; j += 8) {
        uint64_t w;
        memcpy(&w, code + (pos >> 3), 8); // the bit stream is LSB-first
        w >>= pos & 7;
        for (int t = 0; t < 8; t++) {
            uint32_t idx = (uint32_t)((w >> (t * b)) & mask);
            row[j + t] = s.u[idx];
            vsum += s.v[idx];
        }
        pos += 8 * b;
    }
    vsum += int8_decode_natural_range(s, code, j, s.ncoords, row + j);
    memset(row + s.ncoords, 0, s.width - s.ncoords);
    return vsum;
}

int32_t int8_decode_natural_range(
        const Int8Segment& s,
        const uint8_t* code,
        size_t j0,
        size_t j1,
        uint8_t* out) {
    int32_t vsum = 0;
    for (size_t j = j0; j < j1; j++) {
        uint32_t idx = get_bits(code, s.bit_offset + s.nbits * j, s.nbits);
        out[j - j0] = s.u[idx];
        vsum += s.v[idx];
    }
    return vsum;
}

namespace {

/// mirrors the SIMD decoder byte for byte, the padding included (it reads
/// the bytes after the segment, whose values meet zero query weights)
int32_t
decode_interleaved(const Int8Segment& s, const uint8_t* code, uint8_t* row) {
    const int b = s.nbits, per = 8 / b;
    const uint32_t mask = (1u << b) - 1;
    const uint8_t* p = code + (s.bit_offset >> 3);
    const size_t chunk = 32 * per, nchunks = s.width / chunk;
    int32_t vsum = 0;
    for (size_t c = 0; c < nchunks; c++) {
        for (int k = 0; k < per; k++) {
            for (size_t i = 0; i < 32; i++) {
                uint32_t idx = (p[c * 32 + i] >> (k * b)) & mask;
                row[c * chunk + k * 32 + i] = s.u[idx];
                if (c * chunk + i * per + k < s.ncoords) {
                    vsum += s.v[idx];
                }
            }
        }
    }
    return vsum;
}

void decode_tile_scalar(
        const Int8Layout& L,
        const uint8_t* codes,
        size_t n,
        uint8_t* tile,
        int32_t* vsum) {
    for (size_t i = 0; i < n; i++) {
        const uint8_t* code = codes + i * L.code_size;
        for (int s = 0; s < L.nseg; s++) {
            const Int8Segment& sg = L.seg[s];
            uint8_t* row = tile + i * L.row + sg.tile_offset;
            int32_t v =
                    sg.interleaved
                            ? decode_interleaved(sg, code, row)
                            : int8_decode_natural(sg, code, L.code_size, row);
            if (L.want_v) {
                vsum[i * L.nseg + s] = v;
            }
        }
    }
}

void tile_dots_scalar(
        const Int8Layout& L,
        const uint8_t* tile,
        size_t n,
        const int8_t* q8,
        size_t nq,
        int32_t* out) {
    for (size_t i = 0; i < n; i++) {
        const uint8_t* row = tile + i * L.row;
        for (size_t q = 0; q < nq; q++) {
            const int8_t* qr = q8 + q * L.row;
            for (int s = 0; s < L.nseg; s++) {
                const Int8Segment& sg = L.seg[s];
                int32_t acc = 0;
                for (size_t j = sg.tile_offset; j < sg.tile_offset + sg.width;
                     j++) {
                    acc += (int32_t)row[j] * (int32_t)qr[j];
                }
                out[(q * n + i) * L.nseg + s] = acc;
            }
        }
    }
}

void direct_dots_scalar(
        const Int8Layout& L,
        const uint8_t* codes,
        size_t n,
        const int8_t* q8,
        size_t nq,
        int32_t* out,
        int32_t* vsum,
        size_t /* ahead */) {
    std::vector<uint8_t> row(L.row);
    std::vector<int32_t> u(nq * L.nseg);
    for (size_t i = 0; i < n; i++) {
        decode_tile_scalar(
                L,
                codes + i * L.code_size,
                1,
                row.data(),
                L.want_v ? vsum + i * L.nseg : nullptr);
        tile_dots_scalar(L, row.data(), 1, q8, nq, u.data());
        for (size_t q = 0; q < nq; q++) {
            std::copy_n(
                    u.data() + q * L.nseg, L.nseg, out + (q * n + i) * L.nseg);
        }
    }
}

const Int8Kernels kScalar = {
        "scalar",
        decode_tile_scalar,
        tile_dots_scalar,
        direct_dots_scalar,
        0, // tiles are rows
};

} // namespace

const Int8Kernels& int8_kernels_scalar() {
    return kScalar;
}

} // namespace faiss_turbo
