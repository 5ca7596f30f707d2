#include <faiss_turbo/impl/random.h>

#include <cmath>

namespace faiss_turbo {

namespace {

uint64_t splitmix64(uint64_t& x) {
    uint64_t z = (x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

inline uint64_t rotl(uint64_t x, int k) {
    return (x << k) | (x >> (64 - k));
}

} // namespace

SplitRNG::SplitRNG(uint64_t seed) {
    uint64_t x = seed;
    for (int i = 0; i < 4; i++) {
        s[i] = splitmix64(x);
    }
}

uint64_t SplitRNG::next_u64() {
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

uint64_t SplitRNG::next_below(uint64_t n) {
    unsigned __int128 m = (unsigned __int128)next_u64() * n;
    return (uint64_t)(m >> 64);
}

double SplitRNG::next_double() {
    return (next_u64() >> 11) * 0x1.0p-53;
}

double SplitRNG::next_gaussian() {
    if (has_spare) {
        has_spare = false;
        return spare;
    }
    double u, v, s2;
    do {
        u = 2 * next_double() - 1;
        v = 2 * next_double() - 1;
        s2 = u * u + v * v;
    } while (s2 >= 1 || s2 == 0);
    double f = std::sqrt(-2 * std::log(s2) / s2);
    spare = v * f;
    has_spare = true;
    return u * f;
}

std::vector<uint32_t> random_permutation(SplitRNG& rng, size_t n) {
    std::vector<uint32_t> perm(n);
    for (size_t i = 0; i < n; i++) {
        perm[i] = i;
    }
    for (size_t i = n; i > 1; i--) {
        size_t j = rng.next_below(i);
        std::swap(perm[i - 1], perm[j]);
    }
    return perm;
}

} // namespace faiss_turbo
