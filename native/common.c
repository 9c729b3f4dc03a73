/* Shared pieces: clocks, sleeping, spin locks, errors, and mapping the shared memory. */
#include "kv_internal.h"

#include <fcntl.h>
#include <stdarg.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define KVMFR_DMABUF_GETSIZE 0x7544   /* _IO('u', 0x44): size of a /dev/kvmfrN device */

uint64_t kv_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

uint64_t kv_now_ms(void)
{
    return kv_now_ns() / 1000000ull;
}

void kv_sleep_us(uint32_t us)
{
    struct timespec ts = { .tv_sec = us / 1000000u, .tv_nsec = (long)(us % 1000000u) * 1000L };
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

int kv_lock(uint32_t *lock, uint32_t timeout_us)
{
    /* Lock words live in guest-writable memory: one holding garbage, or held by a party that died,
     * never becomes 0 again. Every wait for one is bounded; the caller decides what a timeout means. */
    uint64_t deadline = 0;
    KV_ALIGNED(lock);
    for (unsigned spins = 0;; ++spins) {
        uint32_t expected = 0;
        if (__atomic_compare_exchange_n(lock, &expected, 1, 0, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST))
            return 1;
        if (spins < 1000)
            continue;
        uint64_t now = kv_now_ns();
        if (!deadline)
            deadline = now + (uint64_t)timeout_us * 1000ull;
        else if (now > deadline)
            return 0;
        kv_sleep_us(10);   /* the holder may be descheduled; don't burn a whole core */
    }
}

int kv_try_lock(uint32_t *lock)
{
    uint32_t expected = 0;
    KV_ALIGNED(lock);
    return __atomic_compare_exchange_n(lock, &expected, 1, 0, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
}

void kv_unlock(uint32_t *lock)
{
    STORE_SC(lock, 0);
}

int kv_fail(struct kv_error *err, int code, const char *field, uint64_t value, uint64_t limit,
            const char *fmt, ...)
{
    if (err) {
        err->code = code;
        snprintf(err->field, sizeof err->field, "%s", field ? field : "");
        err->value = value;
        err->limit = limit;
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->message, sizeof err->message, fmt, ap);
        va_end(ap);
    }
    return code;
}

uint32_t kv_frame_bpp(uint32_t type)
{
    switch (type) {
    case FRAME_TYPE_BGRA:
    case FRAME_TYPE_RGBA:
    case FRAME_TYPE_RGBA10:  return 4;
    case FRAME_TYPE_RGBA16F: return 8;
    case FRAME_TYPE_BGR_32:
    case FRAME_TYPE_RGB_24:  return 3;
    default:                 return 0;
    }
}

/* The packed 24-bit kinds store 3 bytes a pixel in rows counted in 32-bit texels; every other kind
 * stores one pixel a texel. This is the one place that rule is written down. */
uint32_t kv_data_width(uint32_t type, uint32_t width)
{
    uint32_t bpp = kv_frame_bpp(type);
    return bpp == 3 ? (uint32_t)(((uint64_t)width * 3 + 3) / 4) : bpp ? width : 0;
}

uint64_t kv_row_bytes(uint32_t type, uint32_t data_width)
{
    uint32_t bpp = kv_frame_bpp(type);
    return (uint64_t)data_width * (bpp == 3 ? 4 : bpp);
}

void kv_rect_columns(const struct kvmfr_damage_rect *r, uint32_t type, uint64_t row_len, uint64_t *x0, uint64_t *x1)
{
    /* Rounded out to whole texels: from the texel holding the first pixel's first byte to the end of
     * the texel holding the last pixel's last byte. */
    uint64_t texel = kv_row_bytes(type, 1);
    uint64_t end = (uint64_t)r->x + r->width;
    *x0 = texel ? (uint64_t)r->x * kv_frame_bpp(type) / texel * texel : 0;
    *x1 = kv_row_bytes(type, kv_data_width(type, end > UINT32_MAX ? UINT32_MAX : (uint32_t)end));
    if (*x1 > row_len)
        *x1 = row_len;
}

void kv_frame_info_from_wire(struct kv_frame_info *fi, const struct kvmfr_frame *f)
{
#define COPY(info, wire) fi->info = f->wire;
    KV_FRAME_FIELDS(COPY)
#undef COPY
    memcpy(fi->damage, f->damageRects, f->damageRectsCount * sizeof f->damageRects[0]);
}

void kv_frame_info_to_wire(struct kvmfr_frame *f, const struct kv_frame_info *fi)
{
#define COPY(info, wire) f->wire = fi->info;
    KV_FRAME_FIELDS(COPY)
#undef COPY
    memcpy(f->damageRects, fi->damage, fi->damage_count * sizeof fi->damage[0]);
}

void kv_frame_info_from_wire34(struct kv_frame_info *fi, const struct kvmfr34_frame *f)
{
#define COPY(info, wire) fi->info = f->wire;
    KV_FRAME_FIELDS(COPY)
    KV_FRAME34_FIELDS(COPY)
#undef COPY
    for (int i = 0; i < 6; ++i)
        fi->hdr_primaries[i] = f->hdrDisplayPrimary[i];
    memcpy(fi->damage, f->damageRects, f->damageRectsCount * sizeof f->damageRects[0]);
}

void kv_frame_info_to_wire34(struct kvmfr34_frame *f, const struct kv_frame_info *fi)
{
#define COPY(info, wire) f->wire = fi->info;
    KV_FRAME_FIELDS(COPY)
    KV_FRAME34_FIELDS(COPY)
#undef COPY
    for (int i = 0; i < 6; ++i)
        f->hdrDisplayPrimary[i] = (uint16_t)fi->hdr_primaries[i];
    memcpy(f->damageRects, fi->damage, fi->damage_count * sizeof fi->damage[0]);
}

uint64_t kv_recommended_shm_size(uint32_t width, uint32_t height, uint32_t bytes_per_pixel)
{
    /* B7 docs: W*H*BPP*2 bytes, in MiB, plus 10 MiB, rounded up to a power of two. */
    uint64_t bytes = (uint64_t)width * height * bytes_per_pixel * 2;
    uint64_t mib = (bytes + (1u << 20) - 1) >> 20;
    mib += 10;
    uint64_t p = 1;
    while (p < mib)
        p <<= 1;
    return p << 20;
}

int kv_shm_map(struct kv_shm *shm, const char *path, uint64_t create_size, struct kv_error *err)
{
    memset(shm, 0, sizeof *shm);
    shm->fd = -1;
    shm->guard = -1;
    /* O_NONBLOCK: should a FIFO take the file's place between the caller's stat and this open, the
     * open must not wait for a writer. It changes nothing for files and the kvmfr device. */
    int flags = O_RDWR | O_CLOEXEC | O_NONBLOCK | (create_size ? O_CREAT : 0);
    int fd = open(path, flags, 0660);
    if (fd < 0)
        return kv_fail(err, KV_ERR_MAP, "path", (uint64_t)errno, 0, "cannot open %s: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        close(fd);
        return kv_fail(err, KV_ERR_MAP, "path", (uint64_t)e, 0, "cannot stat %s: %s", path, strerror(e));
    }
    uint64_t size;
    if (S_ISCHR(st.st_mode)) {
        long r = ioctl(fd, KVMFR_DMABUF_GETSIZE, 0);
        if (r <= 0) {
            int e = errno;
            close(fd);
            return kv_fail(err, KV_ERR_MAP, "path", (uint64_t)(e ? e : ENOTTY), 0,
                           "%s is a character device but not a kvmfr device: give the IVSHMEM file or /dev/kvmfr0",
                           path);
        }
        size = (uint64_t)r;
        shm->is_device = 1;
    } else if (S_ISREG(st.st_mode)) {
        size = (uint64_t)st.st_size;
        if (create_size && size < create_size) {
            if (ftruncate(fd, (off_t)create_size) != 0) {
                int e = errno;
                close(fd);
                return kv_fail(err, KV_ERR_MAP, "path", (uint64_t)e, create_size, "cannot size %s to %llu bytes: %s",
                               path, (unsigned long long)create_size, strerror(e));
            }
            size = create_size;
        }
    } else {
        close(fd);
        return kv_fail(err, KV_ERR_MAP, "path", 0, 0,
                       "%s is neither a shared-memory file nor a kvmfr device: give the IVSHMEM file or /dev/kvmfr0",
                       path);
    }
    if (size < LGMP_HEADER_SIZE) {
        close(fd);
        return kv_fail(err, KV_ERR_SHM_TOO_SMALL, "shm.size", size, LGMP_HEADER_SIZE,
                       "%s is %llu bytes; an LGMP region needs at least %d", path,
                       (unsigned long long)size, LGMP_HEADER_SIZE);
    }
    if (size > ((uint64_t)1 << 32)) {
        /* LGMP offsets are 32-bit: nothing past 4 GiB can be addressed. */
        size = (uint64_t)1 << 32;
    }
    void *base = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (base == MAP_FAILED) {
        int e = errno;
        close(fd);
        return kv_fail(err, KV_ERR_MAP, "path", (uint64_t)e, size, "cannot map %s: %s", path, strerror(e));
    }
    shm->base = base;
    shm->size = size;
    shm->fd = fd;
    shm->guard = kv_guard_add(base, size);   /* a file shrinking under us must not kill the process */
    return LGMP_OK;
}

int kv_shm_lost(const struct kv_shm *shm, uint64_t *size_now)
{
    struct stat st;
    *size_now = shm->size;
    if (!shm->base)
        return 0;
    int fault = kv_guard_lost(shm->guard);
    if (shm->is_device || fstat(shm->fd, &st) != 0)
        return fault ? KV_LOST_FAULT : 0;
    *size_now = (uint64_t)st.st_size;
    if (st.st_nlink == 0)
        return KV_LOST_REMOVED;
    if ((uint64_t)st.st_size < shm->size)
        return KV_LOST_SHRANK;
    return fault ? KV_LOST_FAULT : 0;
}

void kv_shm_unmap(struct kv_shm *shm)
{
    kv_guard_remove(shm->guard);
    shm->guard = -1;
    if (shm->base)
        munmap(shm->base, shm->size);
    if (shm->fd >= 0)
        close(shm->fd);
    shm->base = NULL;
    shm->size = 0;
    shm->fd = -1;
}
