#include <faiss_turbo/impl/blocked_codes.h>

#include <algorithm>

#ifdef __SSE2__
#include <emmintrin.h>
#endif

#include <faiss/impl/FaissAssert.h>

namespace faiss_turbo {

namespace {

#ifdef __SSE2__
/// 16 x 16 bytes: out[j] byte i = in[i] byte j
void transpose16(__m128i* v) {
    __m128i t[16];
    for (int k = 0; k < 8; k++) {
        t[k] = _mm_unpacklo_epi8(v[2 * k], v[2 * k + 1]);
        t[8 + k] = _mm_unpackhi_epi8(v[2 * k], v[2 * k + 1]);
    }
    for (int h = 0; h < 2; h++) {
        __m128i* s = t + 8 * h;
        __m128i u[8];
        for (int k = 0; k < 4; k++) {
            u[k] = _mm_unpacklo_epi16(s[2 * k], s[2 * k + 1]);
            u[4 + k] = _mm_unpackhi_epi16(s[2 * k], s[2 * k + 1]);
        }
        for (int hh = 0; hh < 2; hh++) {
            __m128i* w = u + 4 * hh;
            __m128i a = _mm_unpacklo_epi32(w[0], w[1]);
            __m128i b = _mm_unpackhi_epi32(w[0], w[1]);
            __m128i c = _mm_unpacklo_epi32(w[2], w[3]);
            __m128i d = _mm_unpackhi_epi32(w[2], w[3]);
            // rows 8h + 4hh .. + 3, two per 32-bit step
            int r = 8 * h + 4 * hh;
            v[r] = _mm_unpacklo_epi64(a, c);
            v[r + 1] = _mm_unpackhi_epi64(a, c);
            v[r + 2] = _mm_unpacklo_epi64(b, d);
            v[r + 3] = _mm_unpackhi_epi64(b, d);
        }
    }
}
#endif

/// the MSE bytes of a whole block's 32 codes into rows of cs bytes
void block_rows(const uint8_t* blk, size_t ngroups, size_t cs, uint8_t* out) {
    size_t g = 0;
#ifdef __SSE2__
    const __m128i m4 = _mm_set1_epi8(0x0f), mh = _mm_set1_epi8((char)0xf0);
    for (; g + 16 <= ngroups; g += 16) {
        __m128i a[16], b[16]; // byte g + t of codes 0-15 / 16-31
        for (int t = 0; t < 16; t++) {
            const uint8_t* grp = blk + (g + t) * kLutGroupBytes;
            __m128i lo = _mm_loadu_si128((const __m128i*)grp);
            __m128i hi = _mm_loadu_si128((const __m128i*)(grp + 16));
            a[t] = _mm_or_si128(
                    _mm_and_si128(lo, m4),
                    _mm_slli_epi16(_mm_and_si128(hi, m4), 4));
            b[t] = _mm_or_si128(
                    _mm_and_si128(_mm_srli_epi16(lo, 4), m4),
                    _mm_and_si128(hi, mh));
        }
        transpose16(a);
        transpose16(b);
        for (int j = 0; j < 16; j++) {
            _mm_storeu_si128((__m128i*)(out + j * cs + g), a[j]);
            _mm_storeu_si128((__m128i*)(out + (16 + j) * cs + g), b[j]);
        }
    }
#endif
    if (g < ngroups) { // the groups left, code by code: the reference rule
        for (size_t j = 0; j < kLutBlockCodes; j++) {
            lut_kernels_scalar().unpack_code(
                    blk + g * kLutGroupBytes, ngroups - g, j, out + j * cs + g);
        }
    }
}

/// pack_block_code of an all-zero code, with no buffer of zeros: cuts
/// (BlockedCodes::resize, also undoing a failed append) allocate nothing
void clear_block_code(size_t ngroups, size_t pos, uint8_t* blocks) {
    uint8_t* blk = blocks + (pos / kLutBlockCodes) * ngroups * kLutGroupBytes;
    const size_t i = pos % 16;
    const uint8_t keep = pos % kLutBlockCodes < 16 ? 0xf0 : 0x0f;
    for (size_t g = 0; g < ngroups; g++) {
        uint8_t* grp = blk + g * kLutGroupBytes;
        grp[i] &= keep;
        grp[16 + i] &= keep;
    }
}

/// append()'s c_hat of a code, per thread (reserve() sizes it ahead)
std::vector<float>& chat_scratch() {
    thread_local std::vector<float> chat;
    return chat;
}

} // namespace

void pack_block_code(
        const uint8_t* mse, size_t ngroups, size_t pos, uint8_t* blocks) {
    uint8_t* blk = blocks + (pos / kLutBlockCodes) * ngroups * kLutGroupBytes;
    const size_t i = pos % 16;
    const int shift = pos % kLutBlockCodes < 16 ? 0 : 4;
    const uint8_t keep = shift ? 0x0f : 0xf0; // the other code's nibbles
    for (size_t g = 0; g < ngroups; g++) {
        uint8_t* grp = blk + g * kLutGroupBytes;
        grp[i] = (grp[i] & keep) | (uint8_t)((mse[g] & 15) << shift);
        grp[16 + i] = (grp[16 + i] & keep) | (uint8_t)((mse[g] >> 4) << shift);
    }
}

void unpack_block_code(
        const uint8_t* blocks, size_t ngroups, size_t pos, uint8_t* mse) {
    static const LutKernels& k = lut_kernels_best();
    const uint8_t* blk =
            blocks + (pos / kLutBlockCodes) * ngroups * kLutGroupBytes;
    k.unpack_code(blk, ngroups, pos % kLutBlockCodes, mse);
}

void BlockedCodes::set_codec(const TurboQuantizer& tq) {
    FAISS_THROW_IF_NOT_MSG(
            tq.qjl_bytes == 0, "fast-scan layout: TQmse codes only");
    clear();
    // a row is then exactly the MSE bytes and the floats (code(), rows())
    FAISS_THROW_IF_NOT(tq.code_size == tq.mse_bytes + 4 * tq.n_floats());
    ngroups = tq.mse_bytes;
    code_size = tq.code_size;
    has_aux = tq.has_aux();
    has_moff = tq.ip_offset;
    has_cc = !tq.debiased;
}

void BlockedCodes::clear() {
    ntotal = 0;
    blocks.clear();
    norm.clear();
    aux.clear();
    moff.clear();
    cc.clear();
}

void BlockedCodes::put(
        const TurboQuantizer& tq,
        size_t i,
        const uint8_t* c,
        std::vector<float>& chat) {
    pack_block_code(c, ngroups, i, blocks.data());
    TQCodeScalars s;
    if (has_cc) { // decode_rotated's ||c_hat||^2, as the exact score's
        chat.resize(tq.d);
        tq.decode_rotated(c, chat.data(), nullptr, s);
        cc[i] = s.cc;
    } else {
        tq.read_scalars(c, s);
    }
    norm[i] = s.norm;
    if (has_aux) {
        aux[i] = s.aux;
    }
    if (has_moff) {
        moff[i] = s.moff;
    }
}

void BlockedCodes::check_codec(const TurboQuantizer& tq) const {
    FAISS_THROW_IF_NOT_MSG(
            tq.code_size == code_size && tq.mse_bytes == ngroups,
            "fast-scan layout: codes of another codec");
}

void BlockedCodes::append(
        const TurboQuantizer& tq, size_t n, const uint8_t* codes) {
    check_codec(tq);
    const size_t n0 = ntotal;
    resize(n0 + n);
    try {
        std::vector<float>& chat = chat_scratch();
        for (size_t j = 0; j < n; j++) {
            put(tq, n0 + j, codes + j * code_size, chat);
        }
    } catch (...) { // all or nothing: shrinking allocates nothing
        resize(n0);
        throw;
    }
}

void BlockedCodes::update(
        const TurboQuantizer& tq, size_t i0, size_t n, const uint8_t* codes) {
    check_codec(tq);
    FAISS_THROW_IF_NOT_FMT(
            i0 + n <= ntotal,
            "fast-scan layout: update of codes [%zd, %zd) of %zd",
            i0,
            i0 + n,
            ntotal);
    std::vector<float> chat;
    for (size_t j = 0; j < n; j++) {
        put(tq, i0 + j, codes + j * code_size, chat);
    }
}

void BlockedCodes::reserve(size_t n, const TurboQuantizer* tq) {
    if (tq && has_cc) {
        chat_scratch().resize(tq->d);
    }
    const size_t nb = (n + kLutBlockCodes - 1) / kLutBlockCodes;
    grow_capacity(blocks, nb * block_bytes());
    grow_capacity(norm, n);
    grow_capacity(aux, has_aux ? n : 0);
    grow_capacity(moff, has_moff ? n : 0);
    grow_capacity(cc, has_cc ? n : 0);
}

void BlockedCodes::resize(size_t n) {
    // the memory first: growth that fails (out of memory) leaves the codes
    // as they were, ntotal included; the resizes below then cannot throw
    reserve(n);
    // codes past n in the last block kept become padding: all-zero
    const size_t end = std::min(
            ntotal, (n + kLutBlockCodes - 1) / kLutBlockCodes * kLutBlockCodes);
    for (size_t i = n; i < end; i++) {
        clear_block_code(ngroups, i, blocks.data());
    }
    ntotal = n;
    blocks.resize(nblocks() * block_bytes(), 0);
    norm.resize(n, 0);
    aux.resize(has_aux ? n : 0, 0);
    moff.resize(has_moff ? n : 0, 0);
    cc.resize(has_cc ? n : 0, 0);
}

void BlockedCodes::code(
        const TurboQuantizer& tq, size_t i, uint8_t* out) const {
    FAISS_THROW_IF_NOT_FMT(
            i < ntotal, "fast-scan layout: code %zd of %zd", i, ntotal);
    // every byte is written: TQmse rows are the MSE bytes then the floats
    unpack_block_code(blocks.data(), ngroups, i, out);
    tq.write_scalars(out, scalars(i));
}

void BlockedCodes::rows(
        const TurboQuantizer& tq, size_t i0, size_t n, uint8_t* out) const {
    FAISS_THROW_IF_NOT_FMT(
            i0 + n <= ntotal,
            "fast-scan layout: codes [%zd, %zd) of %zd",
            i0,
            i0 + n,
            ntotal);
    const size_t cs = code_size; // every byte written, as in code()
    for (size_t i = i0; i < i0 + n;) {
        uint8_t* o = out + (i - i0) * cs;
        if (i % kLutBlockCodes != 0 || i + kLutBlockCodes > i0 + n) {
            unpack_block_code(blocks.data(), ngroups, i++, o);
            continue;
        }
        block_rows(
                blocks.data() + i / kLutBlockCodes * block_bytes(),
                ngroups,
                cs,
                o);
        i += kLutBlockCodes;
    }
    for (size_t j = 0; j < n; j++) {
        tq.write_scalars(out + j * cs, scalars(i0 + j));
    }
}

size_t BlockedCodes::compact(const std::vector<bool>& keep) {
    FAISS_THROW_IF_NOT(keep.size() == ntotal);
    std::vector<uint8_t> mse(ngroups);
    size_t j = 0;
    for (size_t i = 0; i < ntotal; i++) {
        if (!keep[i]) {
            continue;
        }
        if (i != j) {
            unpack_block_code(blocks.data(), ngroups, i, mse.data());
            pack_block_code(mse.data(), ngroups, j, blocks.data());
            norm[j] = norm[i];
            if (has_aux) {
                aux[j] = aux[i];
            }
            if (has_moff) {
                moff[j] = moff[i];
            }
            if (has_cc) {
                cc[j] = cc[i];
            }
        }
        j++;
    }
    const size_t removed = ntotal - j;
    resize(j);
    return removed;
}

size_t BlockedCodes::bytes() const {
    return blocks.size() +
           sizeof(float) * (norm.size() + aux.size() + moff.size() + cc.size());
}

} // namespace faiss_turbo
