// Stand-ins for the few runtime symbols that Debian trixie / sid builds of
// libfaiss.a (gcc 14-15, glibc 2.38+) need and bookworm's runtimes (gcc 12,
// glibc 2.36) lack, so that scripts/test_against_faiss_deb.sh can link our
// tests against those static libraries here. Never part of the library.
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <vector>

extern "C" void* __cxa_begin_catch(void*) noexcept;

// reached when a destructor throws during unwinding: terminate, as C++ says
extern "C" [[noreturn]] void __cxa_call_terminate(void* ue) noexcept {
    if (ue) {
        __cxa_begin_catch(ue);
    }
    std::terminate();
}

// C23 forms of the C library's parsers: the C17 ones (they differ only on
// "0b" prefixes, which FAISS does not parse)
extern "C" int __isoc23_sscanf(const char* s, const char* fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int r = vsscanf(s, fmt, ap);
    va_end(ap);
    return r;
}
extern "C" long __isoc23_strtol(const char* s, char** end, int base) {
    return strtol(s, end, base);
}
extern "C" unsigned long __isoc23_strtoul(const char* s, char** end, int base) {
    return strtoul(s, end, base);
}
extern "C" long long __isoc23_strtoll(const char* s, char** end, int base) {
    return strtoll(s, end, base);
}

// std::string's out-of-line replace for a source inside the string itself
// (gcc 15): the len1 chars at p become the len2 chars at s, the how_much
// chars after them follow; the string has room. Through a copy of the
// source, so that overlaps need no case analysis.
extern "C" void tq_string_replace_overlapping(
        void* self,
        char* p,
        unsigned long len1,
        const char* s,
        unsigned long len2,
        unsigned long how_much) __asm__("_ZNSt7__cxx1112basic_stringIcSt11char_"
                                        "traitsIcESaIcEE"
                                        "15_M_replace_coldEPcmPKcmm");
extern "C" void tq_string_replace_overlapping(
        void*,
        char* p,
        unsigned long len1,
        const char* s,
        unsigned long len2,
        unsigned long how_much) {
    std::vector<char> src(s, s + len2);
    memmove(p + len2, p + len1, how_much);
    if (len2) {
        memcpy(p, src.data(), len2);
    }
}
