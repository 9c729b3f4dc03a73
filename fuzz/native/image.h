/* A shared-memory image for the fuzz harnesses: a 32 MiB memfd (sparse: only touched pages cost),
 * mapped once for the harness to write and opened by the native helper through /proc/self/fd/N,
 * exactly as a /dev/shm file would be. Every write is remembered so the next input starts from zeros
 * without clearing 32 MiB.
 *
 * Input layout (little endian), shared with fuzz/native/make_seeds.py:
 *   u8  control[4]          what the harness does with the image (see each harness)
 *   u16 head_len            then head_len bytes copied to offset 0 (header, queue table, rings)
 *   { u32 offset; u16 len; u8 bytes[len]; }...   patches anywhere in the image (offset % IMAGE_SIZE)
 */
#ifndef FUZZ_IMAGE_H
#define FUZZ_IMAGE_H

#define _GNU_SOURCE
#include <fcntl.h>
#include <linux/falloc.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define IMAGE_SIZE  (32u << 20)
#define MAX_DIRTY   256

struct image {
    int      fd;
    uint8_t *base;
    char     path[64];
    uint32_t dirty_off[MAX_DIRTY];
    uint32_t dirty_len[MAX_DIRTY];
    int      ndirty;
    int      overflow;          /* too many ranges: clear everything next time */
    uint8_t  control[4];
};

static void image_init(struct image *im, const char *name)
{
    im->fd = memfd_create(name, MFD_CLOEXEC);
    if (im->fd < 0 || ftruncate(im->fd, IMAGE_SIZE) != 0) {
        perror("memfd");
        abort();
    }
    im->base = mmap(NULL, IMAGE_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, im->fd, 0);
    if (im->base == MAP_FAILED) {
        perror("mmap");
        abort();
    }
    snprintf(im->path, sizeof im->path, "/proc/self/fd/%d", im->fd);
    im->ndirty = 0;
    im->overflow = 0;
}

static void image_mark(struct image *im, uint64_t off, uint64_t len)
{
    if (off >= IMAGE_SIZE || !len)
        return;
    if (len > IMAGE_SIZE - off)
        len = IMAGE_SIZE - off;
    if (im->ndirty == MAX_DIRTY) {
        im->overflow = 1;
        return;
    }
    im->dirty_off[im->ndirty] = (uint32_t)off;
    im->dirty_len[im->ndirty] = (uint32_t)len;
    im->ndirty++;
}

static void image_clear(struct image *im)
{
    if (im->overflow) {
        /* Punching the whole file frees its pages and reads back zeros. */
        if (fallocate(im->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, IMAGE_SIZE) != 0)
            memset(im->base, 0, IMAGE_SIZE);
    } else {
        for (int i = 0; i < im->ndirty; ++i)
            memset(im->base + im->dirty_off[i], 0, im->dirty_len[i]);
    }
    im->ndirty = 0;
    im->overflow = 0;
}

static void image_write(struct image *im, uint64_t off, const uint8_t *src, uint64_t len)
{
    off %= IMAGE_SIZE;
    if (len > IMAGE_SIZE - off)
        len = IMAGE_SIZE - off;
    memcpy(im->base + off, src, len);
    image_mark(im, off, len);
}

static uint32_t rd_u32(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return v; }
static uint16_t rd_u16(const uint8_t *p) { uint16_t v; memcpy(&v, p, 2); return v; }

/* Clear what the last input wrote, then lay this input out. Returns 0 when it is too short. */
static int image_load(struct image *im, const uint8_t *data, size_t size)
{
    image_clear(im);
    if (size < 6)
        return 0;
    memcpy(im->control, data, 4);
    size_t head = rd_u16(data + 4);
    data += 6;
    size -= 6;
    if (head > size)
        head = size;
    image_write(im, 0, data, head);
    data += head;
    size -= head;
    while (size >= 6) {
        uint32_t off = rd_u32(data);
        size_t len = rd_u16(data + 4);
        data += 6;
        size -= 6;
        if (len > size)
            len = size;
        image_write(im, off, data, len);
        data += len;
        size -= len;
    }
    return 1;
}

#endif
