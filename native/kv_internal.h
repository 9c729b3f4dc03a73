/* Private to the native helper: atomics, the mapping, error reporting, and guest-value reads. */
#ifndef KV_INTERNAL_H
#define KV_INTERNAL_H

#define _GNU_SOURCE
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <errno.h>

#include "wire.h"
#include "wire_master.h"
#include "kv_api.h"
#include "wire_check.h"

/* Shared memory is written concurrently by an untrusted guest. Every guest value is read exactly
 * once through these (a relaxed atomic load cannot be split or re-read by the compiler), copied
 * into a local, and checked before use. Read-modify-write on shared words uses the same
 * sequentially consistent builtins as the B7 code (LOCK-prefixed on x86-64). */
/* The fuzz harnesses build with KV_FUZZ_ASSERTS: every atomic access then traps on a misaligned
 * address. x86 performs those silently (and UBSan does not look at atomic builtins), but a misaligned
 * atomic is not atomic and, across a cache line, a split lock: a guest-controlled offset must never
 * produce one. */
#ifdef KV_FUZZ_ASSERTS
#define KV_ALIGNED(p)    ((((uintptr_t)(p)) & (sizeof(*(p)) - 1)) ? __builtin_trap() : (void)0)
#else
#define KV_ALIGNED(p)    ((void)0)
#endif
#define LOAD(p)          (KV_ALIGNED(p), __atomic_load_n((p), __ATOMIC_RELAXED))
#define LOAD_ACQ(p)      (KV_ALIGNED(p), __atomic_load_n((p), __ATOMIC_ACQUIRE))
#define LOAD_SC(p)       (KV_ALIGNED(p), __atomic_load_n((p), __ATOMIC_SEQ_CST))
#define STORE(p, v)      (KV_ALIGNED(p), __atomic_store_n((p), (v), __ATOMIC_RELAXED))
#define STORE_REL(p, v)  (KV_ALIGNED(p), __atomic_store_n((p), (v), __ATOMIC_RELEASE))
#define STORE_SC(p, v)   (KV_ALIGNED(p), __atomic_store_n((p), (v), __ATOMIC_SEQ_CST))
#define FETCH_ADD(p, v)  (KV_ALIGNED(p), __atomic_fetch_add((p), (v), __ATOMIC_SEQ_CST))
#define FETCH_SUB(p, v)  (KV_ALIGNED(p), __atomic_fetch_sub((p), (v), __ATOMIC_SEQ_CST))
#define FETCH_AND(p, v)  (KV_ALIGNED(p), __atomic_fetch_and((p), (v), __ATOMIC_SEQ_CST))
#define FETCH_OR(p, v)   (KV_ALIGNED(p), __atomic_fetch_or((p), (v), __ATOMIC_SEQ_CST))
#define EXCHANGE(p, v)   (KV_ALIGNED(p), __atomic_exchange_n((p), (v), __ATOMIC_SEQ_CST))

#define SUBS_ON(s)   ((uint32_t)((s) >> 32))
#define SUBS_BAD(s)  ((uint32_t)(s))
#define SUBS_BIT_ON(i)  ((uint64_t)1 << ((i) + 32))
#define SUBS_BIT_BAD(i) ((uint64_t)1 << (i))

struct kv_shm {
    uint8_t *base;
    uint64_t size;
    int      fd;
    int      is_device;
    int      guard;              /* kv_guard_add id (guard.c), -1 when none */
};

int  kv_shm_map(struct kv_shm *shm, const char *path, uint64_t create_size, struct kv_error *err);
void kv_shm_unmap(struct kv_shm *shm);
/* Is the mapping still backed by its file? 0, or a KV_LOST_* reason; *size_now = the file's size. */
int  kv_shm_lost(const struct kv_shm *shm, uint64_t *size_now);

/* Spin locks shared with the other parties (compare-exchange 0 -> 1; release stores 0). kv_lock gives
 * up after timeout_us and returns 0 (1 when taken). */
int  kv_lock(uint32_t *lock, uint32_t timeout_us);
int  kv_try_lock(uint32_t *lock);
void kv_unlock(uint32_t *lock);

void kv_sleep_us(uint32_t us);

/* Byte columns [x0, x1) of a stored row of frame type `type` that a damage rectangle covers,
 * rounded out to whole texels (see kv_data_width), clipped to row_len. */
void kv_rect_columns(const struct kvmfr_damage_rect *r, uint32_t type, uint64_t row_len, uint64_t *x0, uint64_t *x1);

/* The KVMFRFrame header fields that kv_frame_info holds one to one: X(kv_frame_info name, wire name).
 * Both directions below are generated from this one list. */
#define KV_FRAME_FIELDS(X) \
    X(serial, frameSerial) X(format_ver, formatVer) X(type, type) \
    X(screen_width, screenWidth) X(screen_height, screenHeight) \
    X(data_width, dataWidth) X(data_height, dataHeight) \
    X(frame_width, frameWidth) X(frame_height, frameHeight) \
    X(rotation, rotation) X(stride, stride) X(pitch, pitch) X(flags, flags) \
    X(damage_count, damageRectsCount)

/* Copy the header fields and damage rectangles between a frame header and a kv_frame_info. The
 * client calls this on its private copy after every field was checked; damage_count must be at most
 * KVMFR_MAX_DAMAGE_RECTS. The wire's offset and our derived fields are left to the caller. */
void kv_frame_info_from_wire(struct kv_frame_info *fi, const struct kvmfr_frame *f);
void kv_frame_info_to_wire(struct kvmfr_frame *f, const struct kv_frame_info *fi);

/* The KVMFR 34 fields kv_frame_info holds one to one (beside KV_FRAME_FIELDS, which KVMFR 34 keeps). */
#define KV_FRAME34_FIELDS(X) \
    X(sdr_white_level, sdrWhiteLevel) X(timing_flags, timingFlags) \
    X(hdr_white_point[0], hdrWhitePoint[0]) X(hdr_white_point[1], hdrWhitePoint[1]) \
    X(hdr_max_luminance, hdrMaxDisplayLuminance) X(hdr_min_luminance, hdrMinDisplayLuminance) \
    X(hdr_max_cll, hdrMaxContentLightLevel) X(hdr_max_fall, hdrMaxFrameAverageLightLevel) \
    X(schedule_generation, scheduleGeneration) X(schedule_epoch, scheduleEpoch) \
    X(schedule_deadline_serial, scheduleDeadlineSerial) \
    X(host_capture_ns, captureTime) X(host_post_process_ns, postProcessTime) X(host_copy_ns, copyTime) \
    X(host_ready_ns, readyTime) X(host_hold_ns, holdTime) X(host_ready_lead_ns, readyLeadTime)

/* The same for a KVMFR 34 frame header. from_wire34 leaves timing_valid to the caller (it needs the
 * acquire load and the serial check); to_wire34 leaves timingSerial/timingValid to the producer, which
 * publishes them after the copy. */
void kv_frame_info_from_wire34(struct kv_frame_info *fi, const struct kvmfr34_frame *f);
void kv_frame_info_to_wire34(struct kvmfr34_frame *f, const struct kv_frame_info *fi);

/* Fill *err and return its code. */
int kv_fail(struct kv_error *err, int code, const char *field, uint64_t value, uint64_t limit,
            const char *fmt, ...) __attribute__((format(printf, 6, 7)));


#endif
