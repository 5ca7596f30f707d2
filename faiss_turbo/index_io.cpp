#include <faiss_turbo/index_io.h>

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <new>
#include <stdexcept>
#include <string>

#include <faiss/clone_index.h>
#include <faiss/index_io.h>

#include <faiss_turbo/impl/io_nodes.h>

namespace faiss_turbo {

using namespace io;

namespace {

/*************************************************************
 * File framing
 *************************************************************/

void write_file(const faiss::Index* idx, faiss::IOWriter* writer) {
    SectionWriter w(writer);
    PayloadWriter head;
    head.put<uint32_t>(kFormatVersion);
    head.put<uint32_t>(0);
    w.write(kTagFileHead, head);
    write_node(idx, w, 0);
    PayloadWriter end;
    end.put<uint64_t>(w.nsections);
    w.write(kTagFileEnd, end);
}

faiss::Index* read_file(SectionReader& r) {
    Section head = r.next(kTagFileHead, "the file header");
    PayloadReader pr = head.reader();
    uint32_t version = pr.get<uint32_t>();
    uint32_t reserved = pr.get<uint32_t>();
    pr.expect_end();
    FAISS_THROW_IF_NOT_FMT(
            version >= 1 && version <= kFormatVersion && reserved == 0,
            "faiss-turbo read: format version %u is not supported by this "
            "reader (version %u)",
            version,
            kFormatVersion);
    std::unique_ptr<faiss::Index> idx(read_node(r, 0));
    Section end = r.next(kTagFileEnd, "the end of file marker");
    PayloadReader er = end.reader();
    uint64_t nsections = er.get<uint64_t>();
    er.expect_end();
    FAISS_THROW_IF_NOT_FMT(
            nsections == end.index,
            "faiss-turbo read: the file had %zd sections, %zd expected",
            end.index,
            (size_t)nsections);
    return idx.release();
}

/// faiss exceptions pass; others (bad_alloc...) become faiss exceptions
template <class F> auto guarded(const char* what, F f) -> decltype(f()) {
    try {
        return f();
    } catch (const faiss::FaissException&) {
        throw;
    } catch (const std::bad_alloc&) {
        FAISS_THROW_FMT("%s: out of memory", what);
    } catch (const std::exception& e) {
        FAISS_THROW_FMT("%s: %s", what, e.what());
    }
}

/// FAISS ignores flags that do not apply to an index type (IO_FLAG_MMAP on
/// a flat index); likewise our files are read into memory under
/// IO_FLAG_MMAP and IO_FLAG_ONDISK_SAME_DIR has no on-disk lists to
/// relocate. Other flags (IO_FLAG_SKIP_IVF_DATA alone) are refused.
void check_io_flags(int io_flags) {
    if ((io_flags & faiss::IO_FLAG_MMAP) == faiss::IO_FLAG_MMAP) {
        io_flags &= ~faiss::IO_FLAG_MMAP;
    }
    io_flags &= ~faiss::IO_FLAG_ONDISK_SAME_DIR;
    FAISS_THROW_IF_NOT_FMT(
            (io_flags & ~faiss::IO_FLAG_READ_ONLY) == 0,
            "faiss-turbo read: io_flags 0x%x are not supported for "
            "faiss-turbo files (only IO_FLAG_READ_ONLY, IO_FLAG_MMAP, "
            "IO_FLAG_ONDISK_SAME_DIR)",
            io_flags);
}

/// reads the first 4 bytes; our files start with the tag of the header
/// section, FAISS files with an index fourcc
std::vector<uint8_t> peek_magic(faiss::IOReader* reader) {
    std::vector<uint8_t> magic(4);
    size_t n = (*reader)(magic.data(), 1, 4);
    magic.resize(n);
    return magic;
}

bool is_turbo_magic(const std::vector<uint8_t>& m) {
    uint32_t tag = 0;
    if (m.size() == 4) {
        memcpy(&tag, m.data(), 4);
    }
    return tag == kTagFileHead;
}

faiss::Index* read_from(faiss::IOReader* reader, int io_flags, uint64_t size) {
    std::vector<uint8_t> magic = peek_magic(reader);
    bool ours = is_turbo_magic(magic);
    PrefixedIOReader pr(std::move(magic), reader);
    pr.name = reader->name;
    if (!ours) {
        return faiss::read_index(&pr, io_flags);
    }
    check_io_flags(io_flags);
    SectionReader r(&pr, size);
    return read_file(r);
}

/// bytes left in a regular file, UINT64_MAX if not known
uint64_t bytes_left(FILE* f) {
    struct stat st;
    long pos = ftell(f);
    if (pos < 0 || fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode) ||
        st.st_size < pos) {
        return UINT64_MAX;
    }
    return (uint64_t)(st.st_size - pos);
}

} // namespace

/*************************************************************
 * Writing
 *************************************************************/

bool index_contains_turbo(const faiss::Index* idx) {
    return contains_turbo(idx);
}

void write_index(const faiss::Index* idx, faiss::IOWriter* writer) {
    FAISS_THROW_IF_NOT_MSG(idx, "faiss-turbo write_index: null index");
    FAISS_THROW_IF_NOT_MSG(writer, "faiss-turbo write_index: null writer");
    guarded("faiss-turbo write", [&] {
        if (contains_turbo(idx)) {
            write_file(idx, writer);
        } else {
            faiss::write_index(idx, writer);
        }
    });
}

void write_index(const faiss::Index* idx, FILE* f) {
    FAISS_THROW_IF_NOT_MSG(f, "faiss-turbo write_index: null FILE*");
    faiss::FileIOWriter writer(f);
    faiss_turbo::write_index(idx, &writer);
}

void write_index(const faiss::Index* idx, const char* fname) {
    FAISS_THROW_IF_NOT_MSG(idx, "faiss-turbo write_index: null index");
    FAISS_THROW_IF_NOT_MSG(fname, "faiss-turbo write_index: null file name");
    // a temporary file beside the target, renamed over it once complete and
    // on disk: a failed write (an index that cannot be written, a full
    // disk) leaves what the file held. A link is followed, as opening it
    // would.
    char resolved[PATH_MAX];
    const std::string target = realpath(fname, resolved) ? resolved : fname;
    const std::string tmp = target + ".tmp-" + std::to_string(getpid());
    FILE* f = fopen(tmp.c_str(), "wb");
    FAISS_THROW_IF_NOT_FMT(
            f,
            "faiss-turbo write_index: cannot create %s: %s",
            tmp.c_str(),
            strerror(errno));
    try {
        {
            faiss::FileIOWriter writer(f); // does not close f
            faiss_turbo::write_index(idx, &writer);
        }
        FAISS_THROW_IF_NOT_FMT(
                fflush(f) == 0 && fsync(fileno(f)) == 0,
                "faiss-turbo write_index: writing %s: %s",
                tmp.c_str(),
                strerror(errno));
    } catch (...) {
        fclose(f);
        unlink(tmp.c_str());
        throw;
    }
    if (fclose(f) != 0 || rename(tmp.c_str(), target.c_str()) != 0) {
        const int err = errno;
        unlink(tmp.c_str());
        FAISS_THROW_FMT(
                "faiss-turbo write_index: writing %s: %s",
                target.c_str(),
                strerror(err));
    }
}

std::vector<uint8_t> serialize_index(const faiss::Index* idx) {
    faiss::VectorIOWriter writer;
    faiss_turbo::write_index(idx, &writer);
    return std::move(writer.data);
}

/*************************************************************
 * Reading
 *************************************************************/

faiss::Index* read_index(faiss::IOReader* reader, int io_flags) {
    FAISS_THROW_IF_NOT_MSG(reader, "faiss-turbo read_index: null reader");
    return guarded("faiss-turbo read", [&] {
        return read_from(reader, io_flags, UINT64_MAX);
    });
}

faiss::Index* read_index(FILE* f, int io_flags) {
    FAISS_THROW_IF_NOT_MSG(f, "faiss-turbo read_index: null FILE*");
    uint64_t size = bytes_left(f);
    faiss::FileIOReader reader(f);
    return guarded("faiss-turbo read", [&] {
        return read_from(&reader, io_flags, size);
    });
}

faiss::Index* read_index(const char* fname, int io_flags) {
    FAISS_THROW_IF_NOT_MSG(fname, "faiss-turbo read_index: null file name");
    std::vector<uint8_t> magic;
    uint64_t size;
    {
        faiss::FileIOReader reader(fname); // throws if it cannot open
        size = bytes_left(reader.f);
        magic = peek_magic(&reader);
    }
    if (!is_turbo_magic(magic)) {
        // FAISS opens it itself, so that its mmap / on-disk flags work
        return guarded("faiss read", [&] {
            return faiss::read_index(fname, io_flags);
        });
    }
    faiss::FileIOReader reader(fname);
    return guarded("faiss-turbo read", [&] {
        return read_from(&reader, io_flags, size);
    });
}

faiss::Index* deserialize_index(const uint8_t* data, size_t size) {
    FAISS_THROW_IF_NOT_MSG(
            data || size == 0, "faiss-turbo deserialize_index: null data");
    MemoryIOReader reader(data, size);
    reader.name = "<buffer>";
    std::unique_ptr<faiss::Index> idx(guarded(
            "faiss-turbo read", [&] { return read_from(&reader, 0, size); }));
    FAISS_THROW_IF_NOT_FMT(
            reader.pos == size,
            "faiss-turbo deserialize_index: %zd trailing bytes after the "
            "index",
            size - reader.pos);
    return idx.release();
}

faiss::Index* deserialize_index(const std::vector<uint8_t>& data) {
    return deserialize_index(data.data(), data.size());
}

faiss::Index* clone_index(const faiss::Index* idx) {
    FAISS_THROW_IF_NOT_MSG(idx, "faiss-turbo clone_index: null index");
    if (!contains_turbo(idx)) {
        return faiss::clone_index(idx);
    }
    std::vector<uint8_t> bytes = serialize_index(idx);
    return deserialize_index(bytes);
}

} // namespace faiss_turbo
