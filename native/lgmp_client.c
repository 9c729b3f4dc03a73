/* The reader side of both Looking Glass protocols: B7 (LGMP 6 / KVMFR 20, shared/docs/lgmp-kvmfr.md
 * sections 3.2-3.3 and 5) and master (LGMP 12 / KVMFR 34, sections 4.2 and 6). Which one a session
 * speaks is read from the memory at each session init.
 *
 * One client: the two LGMP layouts differ in where the shared words sit (bound once per session into
 * struct kv_queue_state's pointers and struct kv_proto's offsets) and in a few rules, which the code
 * spells out where they differ (c->p->pow2_rings: LGMP 12's ring without a sentinel slot, its
 * pending-bit driven peek, its locked done).
 *
 * The guest owns the memory we read. Every value taken from it is loaded once into a local, checked
 * against the mapping and the protocol's limits, and only then used; indices into the rings come
 * from copies validated at session start, never from a fresh read.
 */
#include "kv_internal.h"

#include <stdlib.h>
#include <sys/random.h>

/* The fuzz harnesses (fuzz/native) build with shorter waits, so an input that holds a lock or stalls
 * the write pointer costs microseconds, not a second; the logic is the same. */
#ifndef KV_LOCK_TIMEOUT_MS
#define KV_LOCK_TIMEOUT_MS  1000u
#endif
#ifndef KV_WP_STALL_NS
#define KV_WP_STALL_NS      (100ull * 1000000ull)   /* no write-pointer progress for this long: give up */
#endif
#ifndef KV_FRAME_DEADLINE_NS
#define KV_FRAME_DEADLINE_NS (1000ull * 1000000ull) /* one frame's copy may wait this long in all */
#endif
#define LOCK_TIMEOUT_MS     KV_LOCK_TIMEOUT_MS
#define WP_STALL_NS         KV_WP_STALL_NS
#define SESSION_CHECK_NS    (100ull * 1000000ull)
#define FRAME_DEADLINE_NS   KV_FRAME_DEADLINE_NS
#define MAX_UDATA           65536u
#define MAX_RING            4096u
#define MAX_DIM             16384u
#define MAX_PITCH           (MAX_DIM * 8u)
#define MAX_CURSOR_PITCH    (KVMFR_CURSOR_MAX_DIM * 4u)
#define MAX_NITS            10000u   /* PQ's ceiling: a white level or luminance above it is not real */
#define MAX_CHROMA          50000u   /* 1.0 in the 0.00002 units of HDR primaries and white point */

#define SPEAKS "this client speaks B7 (LGMP 6 / KVMFR 20) and master (LGMP 12 / KVMFR 34)"

/* What differs between the two layouts, as data. */
struct kv_proto {
    const char *name;
    uint32_t lgmp, kvmfr;
    uint32_t magic_off, version_off, session_off, numq_off, udata_size_off, udata_off, ts_off;
    uint32_t header_size, queues_off, queue_stride, max_queues, max_subs;
    uint32_t msg_stride, msg_size_off, msg_offset_off, msg_pending_off;
    uint32_t msgs_max, cmsg_stride, cmsg_data_off;
    uint32_t frame_size, cursor_size, ring_align;
    int      pow2_rings;           /* LGMP 12: power-of-two rings, no sentinel, pending-bit peek, locked done */
};

#define HDR6(f)  offsetof(struct lgmp_header, f)
#define HDR12(f) offsetof(struct lgmp12_header, f)
static const struct kv_proto PROTO_B7 = {
    "B7", LGMP_PROTOCOL_VERSION, KVMFR_VERSION,
    HDR6(magic), HDR6(version), HDR6(sessionID), HDR6(numQueues), HDR6(udataSize), LGMP_UDATA_OFFSET,
    HDR6(timestamp),
    LGMP_HEADER_SIZE, HDR6(queues), sizeof(struct lgmp_header_queue), LGMP_MAX_QUEUES, LGMP_MAX_SUBS,
    sizeof(struct lgmp_header_message), offsetof(struct lgmp_header_message, size),
    offsetof(struct lgmp_header_message, offset), offsetof(struct lgmp_header_message, pendingSubs),
    LGMP_MSGS_MAX, sizeof(struct lgmp_client_message), offsetof(struct lgmp_client_message, data),
    sizeof(struct kvmfr_frame), sizeof(struct kvmfr_cursor), 4, 0,
};
static const struct kv_proto PROTO_MASTER = {
    "master", LGMP12_PROTOCOL_VERSION, KVMFR34_VERSION,
    HDR12(magic), HDR12(version), HDR12(sessionID), HDR12(numQueues), HDR12(udataSize), LGMP12_UDATA_OFFSET,
    HDR12(timestamp),
    LGMP12_HEADER_SIZE, HDR12(queues), sizeof(struct lgmp12_header_queue), LGMP12_MAX_QUEUES, LGMP12_MAX_SUBS,
    sizeof(struct lgmp12_header_message), offsetof(struct lgmp12_header_message, size),
    offsetof(struct lgmp12_header_message, offset), offsetof(struct lgmp12_header_message, pendingSubs),
    LGMP12_MSGS_MAX, sizeof(struct lgmp12_client_message), offsetof(struct lgmp12_client_message, data),
    sizeof(struct kvmfr34_frame), sizeof(struct kvmfr34_cursor), 16, 1,
};
_Static_assert(offsetof(struct kvmfr34_frame, offset) == offsetof(struct kvmfr_frame, offset),
               "KVMFR 20 and 34 frames share the fields before offset");
_Static_assert(sizeof(struct kvmfr34_cursor) == sizeof(struct kvmfr_cursor) + 4,
               "KVMFR 34's cursor is KVMFR 20's plus sdrWhiteLevel");

struct kv_queue_state {
    uint32_t queue_id;
    int      present;            /* found in the header at session init */
    int      subscribed;
    int      pinned;             /* read_pos set by kv_client_set_read_pos (a snapshot): read it as is */
    uint32_t index;
    uint32_t num_messages;       /* validated copy */
    uint32_t messages_offset;    /* validated copy */
    uint32_t slot;
    uint32_t read_pos;
    /* The descriptor's shared words, in whichever layout the session found (bind_queue). */
    uint32_t *position, *start, *count, *lock, *new_sub_count, *max_time, *client_ids;
    uint32_t *c_lock, *c_avail, *c_wpos, *c_wserial, *c_rserial;
    uint32_t *subs32;            /* LGMP 12: ON = bits 31..16, BAD = 15..0 */
    uint64_t *subs64;            /* LGMP 6: ON = bits 63..32, BAD = 31..0 */
    uint64_t *msg_timeout, *timeouts;
    uint8_t  *cmsgs;
};

struct kv_client {
    struct kv_shm shm;
    const struct kv_proto *p;    /* the session's protocol (NULL before the first init) */
    const struct kv_proto *hb_p; /* the layout `hosttime` was taken from by kv_client_init */
    uint64_t lgmp_size;          /* bytes LGMP may use: the mapping, less a live recovery region */
    uint32_t poll_us;
    uint32_t client_id;          /* B7: ours (random unless set) */
    uint32_t cid;                /* the id this session stamps: B7's client_id, LGMP 12's from nextClientID */
    uint32_t session_id;
    int      have_session;
    uint32_t features;
    uint64_t hosttime;           /* last heartbeat value seen (atomic: two threads check validity) */
    uint64_t last_heartbeat_ns;
    struct kv_queue_state frame;
    struct kv_queue_state cursor;
    int      frame_peeked;
    struct kv_frame_info peeked; /* private, validated copy of the peeked frame */
    uint64_t fb_offset;          /* SHM offset of the peeked frame's write pointer */
    uint64_t frame_msg_off;      /* SHM offset of the peeked frame's header (KVMFR 34 timing re-read) */
    uint8_t  udata[MAX_UDATA];
    /* The frame stream's rhythm, for kv_client_wait's coarse polls early in a frame interval. */
    uint64_t frame_seen_ns;      /* when the last frame was peeked (0: none yet) */
    uint64_t frame_period_ns;    /* smoothed interval between frames; 0: frames do not come steadily */
    uint64_t frame_jitter_ns;    /* smoothed distance of each interval from frame_period_ns */
};

/* ---- small helpers ---------------------------------------------------------------------- */

static inline uint32_t *hdr_u32(struct kv_client *c, uint32_t off) { return (uint32_t *)(c->shm.base + off); }
static inline uint64_t *heartbeat_ptr(struct kv_client *c, const struct kv_proto *p)
{
    return (uint64_t *)(c->shm.base + p->ts_off);
}

static inline uint8_t *msg_at(struct kv_client *c, const struct kv_queue_state *qs, uint32_t i)
{
    return c->shm.base + qs->messages_offset + (uint64_t)i * c->p->msg_stride;
}
static inline uint32_t *msg_u32(struct kv_client *c, const struct kv_queue_state *qs, uint32_t i, uint32_t field_off)
{
    return (uint32_t *)(msg_at(c, qs, i) + field_off);
}
#define MSG_PENDING(c, qs, i) msg_u32(c, qs, i, (c)->p->msg_pending_off)

static inline uint32_t ring_next(const struct kv_queue_state *qs, uint32_t i) { return (i + 1) % qs->num_messages; }

/* The subscriber mask in B7's form (ON in the high word, BAD in the low), whatever the layout. */
static uint64_t subs_load(const struct kv_queue_state *qs)
{
    if (qs->subs64)
        return LOAD_SC(qs->subs64);
    uint32_t v = LOAD_ACQ(qs->subs32);
    return ((uint64_t)(v >> 16) << 32) | (v & 0xffffu);
}
static void subs_store(const struct kv_queue_state *qs, uint64_t s)
{
    if (qs->subs64)
        STORE_SC(qs->subs64, s);
    else
        STORE_REL(qs->subs32, (SUBS_ON(s) << 16) | (SUBS_BAD(s) & 0xffffu));
}

#define BIND_QUEUE(qs, q) do { \
    (qs)->position = &(q)->position; (qs)->start = &(q)->start; (qs)->count = &(q)->count; \
    (qs)->lock = &(q)->lock; (qs)->new_sub_count = &(q)->newSubCount; (qs)->max_time = &(q)->maxTime; \
    (qs)->client_ids = (q)->clientID; (qs)->timeouts = (q)->timeout; (qs)->msg_timeout = &(q)->msgTimeout; \
    (qs)->c_lock = &(q)->cMsgLock; (qs)->c_avail = &(q)->cMsgAvail; (qs)->c_wpos = &(q)->cMsgWPos; \
    (qs)->c_wserial = &(q)->cMsgWSerial; (qs)->c_rserial = &(q)->cMsgRSerial; \
    (qs)->cmsgs = (uint8_t *)(q)->cMsgs; \
} while (0)

static void bind_queue(struct kv_client *c, struct kv_queue_state *qs, uint32_t index)
{
    uint8_t *d = c->shm.base + c->p->queues_off + (uint64_t)index * c->p->queue_stride;
    if (c->p->pow2_rings) {
        struct lgmp12_header_queue *q = (struct lgmp12_header_queue *)d;
        BIND_QUEUE(qs, q);
        qs->subs32 = &q->subs;
        qs->subs64 = NULL;
    } else {
        struct lgmp_header_queue *q = (struct lgmp_header_queue *)d;
        BIND_QUEUE(qs, q);
        qs->subs64 = &q->subs;
        qs->subs32 = NULL;
    }
    qs->index = index;
}

static struct kv_queue_state *queue_by_id(struct kv_client *c, uint32_t queue_id)
{
    if (queue_id == LGMP_Q_FRAME)
        return &c->frame;
    if (queue_id == LGMP_Q_POINTER)
        return &c->cursor;
    return NULL;
}

/* A guest that holds a shared lock forever must not hang us. */
static int lock_or_fail(uint32_t *lock, const char *what, struct kv_error *err)
{
    uint64_t deadline = kv_now_ns() + LOCK_TIMEOUT_MS * 1000000ull;
    for (unsigned spins = 0;; ++spins) {
        if (kv_try_lock(lock))
            return LGMP_OK;
        if (spins > 200) {
            if (kv_now_ns() > deadline)
                return kv_fail(err, KV_ERR_TIMEOUT, what, 1, LOCK_TIMEOUT_MS,
                               "%s has been held for over %u ms (a stuck or hostile host)", what, LOCK_TIMEOUT_MS);
            kv_sleep_us(20);
        }
    }
}

/* Is [off, off+len) inside the region LGMP may use? (no overflow: all 64-bit) */
static inline int in_shm(const struct kv_client *c, uint64_t off, uint64_t len)
{
    return off <= c->lgmp_size && len <= c->lgmp_size - off;
}

static void copy_cstr(char *dst, size_t dst_size, const uint8_t *src, size_t src_len)
{
    size_t n = 0;
    while (n < src_len && n + 1 < dst_size && src[n])
        ++n;
    memcpy(dst, src, n);
    dst[n] = 0;
}

/* ---- lifecycle -------------------------------------------------------------------------- */

struct kv_client *kv_client_new(void)
{
    struct kv_client *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->shm.fd = -1;
    c->shm.guard = -1;
    c->poll_us = 250;
    c->frame.queue_id = LGMP_Q_FRAME;
    c->cursor.queue_id = LGMP_Q_POINTER;
    return c;
}

void kv_client_free(struct kv_client *c)
{
    if (!c)
        return;
    kv_shm_unmap(&c->shm);
    free(c);
}

static void forget_session(struct kv_client *c)
{
    c->have_session = 0;
    c->frame_peeked = 0;
    c->frame.subscribed = c->cursor.subscribed = 0;
    c->frame.present = c->cursor.present = 0;
    c->frame.pinned = c->cursor.pinned = 0;
}

int kv_client_open(struct kv_client *c, const char *path, struct kv_error *err)
{
    forget_session(c);   /* a session belongs to its mapping */
    kv_shm_unmap(&c->shm);
    int rc = kv_shm_map(&c->shm, path, 0, err);
    if (rc)
        return rc;
    c->lgmp_size = c->shm.size;
    c->p = c->hb_p = NULL;
    return LGMP_OK;
}

uint64_t kv_client_shm_size(struct kv_client *c) { return c->shm.size; }
int kv_client_shm_lost(struct kv_client *c, uint64_t *size_now) { return kv_shm_lost(&c->shm, size_now); }

void kv_client_close(struct kv_client *c)
{
    forget_session(c);
    kv_shm_unmap(&c->shm);
    c->p = c->hb_p = NULL;
}

static int shm_lost_error(struct kv_client *c, int why, uint64_t size_now, struct kv_error *err)
{
    return kv_fail(err, KV_ERR_SHM_LOST, "shm.size", (uint64_t)why, size_now,
                   why == KV_LOST_REMOVED ? "the shared memory file was removed" :
                   "the shared memory file shrank to %llu bytes under the mapping (of %llu)",
                   (unsigned long long)size_now, (unsigned long long)c->shm.size);
}
void kv_client_set_poll_us(struct kv_client *c, uint32_t poll_us) { c->poll_us = poll_us ? poll_us : 1; }
void kv_client_set_client_id(struct kv_client *c, uint32_t id) { c->client_id = id; }

/* ---- session ---------------------------------------------------------------------------- */

/* Which layout does the memory hold? B7's magic sits at 0, LGMP 12's at 9664; NULL: neither (then
 * *err says why: another version, or no host). The version must match the layout. */
static const struct kv_proto *find_layout(struct kv_client *c, struct kv_error *err)
{
    static const struct kv_proto *const protos[] = { &PROTO_B7, &PROTO_MASTER };
    for (size_t i = 0; i < sizeof protos / sizeof protos[0]; ++i) {
        const struct kv_proto *p = protos[i];
        if (c->shm.size < p->header_size || LOAD_SC(hdr_u32(c, p->magic_off)) != LGMP_PROTOCOL_MAGIC)
            continue;
        uint32_t version = LOAD(hdr_u32(c, p->version_off));
        if (version == p->lgmp)
            return p;
        kv_fail(err, LGMP_ERR_INVALID_VERSION, "lgmp.version", version, p->lgmp,
                "host speaks LGMP %u; " SPEAKS, version);
        return NULL;
    }
    /* LGMP 10 (Looking Glass master, Aug 2025 - Jul 2026): report it as a version mismatch, not as
     * "host not running" (spec 4.1, 9.3). */
    uint64_t off = LGMP_V10_MAGIC_OFFSET;
    if (c->shm.size >= off + 20 + KVMFR_HEADER_SIZE && LOAD(hdr_u32(c, off)) == LGMP_PROTOCOL_MAGIC) {
        uint32_t version = LOAD(hdr_u32(c, off + 4));
        uint32_t kvmfr = 0;
        if (memcmp(c->shm.base + off + 20, "KVMFR---", 8) == 0)
            kvmfr = LOAD(hdr_u32(c, off + 28));
        kv_fail(err, KV_ERR_OTHER_LGMP, "lgmp.version", version, kvmfr,
                "host speaks LGMP %u / KVMFR %u; " SPEAKS, version, kvmfr);
        return NULL;
    }
    kv_fail(err, LGMP_ERR_INVALID_MAGIC, "lgmp.magic", c->shm.size >= 4 ? LOAD(hdr_u32(c, 0)) : 0,
            LGMP_PROTOCOL_MAGIC, "no LGMP header in the shared memory: the host application is not running");
    return NULL;
}

void kv_client_init(struct kv_client *c)
{
    struct kv_error e;
    const struct kv_proto *p = find_layout(c, &e);
    c->hb_p = p ? p : &PROTO_B7;
    __atomic_store_n(&c->hosttime, LOAD_SC(heartbeat_ptr(c, c->hb_p)), __ATOMIC_RELAXED);
    c->have_session = 0;
}

/* Spec 6, IDD hosts only: a live recovery block in the last 64 KiB keeps LGMP out of them. */
static uint64_t lgmp_region_size(const struct kv_client *c)
{
    if (c->shm.size < (uint64_t)KVMFR_R_REGION_SIZE + LGMP12_HEADER_SIZE)
        return c->shm.size;
    const uint8_t *r = c->shm.base + c->shm.size - KVMFR_R_REGION_SIZE;
    if (memcmp(r, "KVMFRRCV", 8) != 0 || LOAD_ACQ((const uint32_t *)(r + 60)) != 1)
        return c->shm.size;
    return c->shm.size - KVMFR_R_REGION_SIZE;
}

static int parse_kvmfr(struct kv_client *c, uint32_t udata_size, struct kv_host_info *info, struct kv_error *err)
{
    const uint8_t *u = c->udata;
    struct kvmfr_header kh;
    if (udata_size < KVMFR_HEADER_SIZE)
        return kv_fail(err, KV_ERR_BAD_FIELD, "lgmp.udataSize", udata_size, KVMFR_HEADER_SIZE,
                       "user data is %u bytes, smaller than the %d-byte KVMFR header", udata_size, KVMFR_HEADER_SIZE);
    memcpy(&kh, u, sizeof kh);
    if (memcmp(kh.magic, "KVMFR---", 8) != 0)
        return kv_fail(err, KV_ERR_KVMFR_MAGIC, "kvmfr.magic", 0, 0, "user data does not start with KVMFR---");
    copy_cstr(info->hostver, sizeof info->hostver, (const uint8_t *)kh.hostver, sizeof kh.hostver);
    info->kvmfr_version = kh.version;
    /* KVMFR 20 goes with LGMP 6 and 34 with 12; any other pairing is a host we cannot read.
     * limit = the host's LGMP version (for the caller's report). */
    if (kh.version != c->p->kvmfr)
        return kv_fail(err, KV_ERR_KVMFR_VERSION, "kvmfr.version", kh.version, c->p->lgmp,
                       "host speaks LGMP %u / KVMFR %u (host version \"%s\"); " SPEAKS,
                       c->p->lgmp, kh.version, kh.version >= 2 ? info->hostver : "?");
    info->features = kh.features;
    info->os = -1;

    uint32_t pos = KVMFR_HEADER_SIZE;
    while (udata_size - pos >= KVMFR_RECORD_HEADER_SIZE) {
        struct kvmfr_record rec;
        memcpy(&rec, u + pos, sizeof rec);
        pos += KVMFR_RECORD_HEADER_SIZE;
        if (rec.size > udata_size - pos)
            break;   /* as B7: a record that runs past the user data ends the list */
        const uint8_t *p = u + pos;
        if (rec.type == KVMFR_RECORD_VMINFO && rec.size >= KVMFR_VMINFO_FIXED_SIZE) {
            memcpy(info->uuid, p, 16);
            copy_cstr(info->capture, sizeof info->capture, p + 16, 32);
            info->cpus = p[48];
            info->cores = p[49];
            info->sockets = p[50];
            copy_cstr(info->model, sizeof info->model, p + 51, rec.size - KVMFR_VMINFO_FIXED_SIZE);
            info->has_vminfo = 1;
        } else if (rec.type == KVMFR_RECORD_OSINFO && rec.size >= 1) {
            info->os = p[0];
            copy_cstr(info->os_name, sizeof info->os_name, p + 1, rec.size - 1);
        }
        info->records++;
        pos += rec.size;
    }
    return LGMP_OK;
}

/* Find queue `qs` in the header's table and validate what we will index with (session init, and
 * LGMP 12's subscribe: its host may add queues after start). */
static int scan_queue(struct kv_client *c, struct kv_queue_state *qs, uint32_t num_queues, uint32_t udata_size,
                      struct kv_error *err)
{
    const struct kv_proto *p = c->p;
    qs->present = 0;
    for (uint32_t i = 0; i < num_queues; ++i) {
        uint8_t *d = c->shm.base + p->queues_off + (uint64_t)i * p->queue_stride;
        uint32_t id, n, off;
        if (p->pow2_rings) {
            struct lgmp12_header_queue *q = (struct lgmp12_header_queue *)d;
            id = LOAD(&q->queueID), n = LOAD(&q->numMessages), off = LOAD(&q->messagesOffset);
        } else {
            struct lgmp_header_queue *q = (struct lgmp_header_queue *)d;
            id = LOAD(&q->queueID), n = LOAD(&q->numMessages), off = LOAD(&q->messagesOffset);
        }
        if (id != qs->queue_id)
            continue;
        char field[48];
        snprintf(field, sizeof field, "queue[%u].numMessages", id);
        if (n < 2 || n > MAX_RING || (p->pow2_rings && (n & (n - 1))))
            return kv_fail(err, KV_ERR_BAD_FIELD, field, n, MAX_RING,
                           p->pow2_rings ? "queue %u has %u ring slots (must be a power of two, 2..%u)"
                                         : "queue %u has %u ring slots (must be 2..%u)", id, n, MAX_RING);
        uint64_t lowest = p->pow2_rings ? (uint64_t)p->udata_off + udata_size : p->header_size;
        snprintf(field, sizeof field, "queue[%u].messagesOffset", id);
        if (off < lowest || (off & (p->ring_align - 1)) || !in_shm(c, off, (uint64_t)n * p->msg_stride))
            return kv_fail(err, KV_ERR_BAD_FIELD, field, off, c->lgmp_size,
                           "queue %u's ring at %u (%u slots) is misaligned, overlaps the header or lies outside "
                           "the %llu-byte mapping", id, off, n, (unsigned long long)c->lgmp_size);
        qs->present = 1;
        qs->num_messages = n;
        qs->messages_offset = off;
        bind_queue(c, qs, i);
        return LGMP_OK;
    }
    return LGMP_OK;
}

/* The header's queue count, checked (LGMP 12 hosts may raise it later: acquire). */
static int load_num_queues(struct kv_client *c, uint32_t *num_queues, struct kv_error *err)
{
    uint32_t n = LOAD_ACQ(hdr_u32(c, c->p->numq_off));
    if (n > c->p->max_queues)
        return kv_fail(err, KV_ERR_BAD_FIELD, "lgmp.numQueues", n, c->p->max_queues,
                       "header claims %u queues; LGMP %u has at most %u", n, c->p->lgmp, c->p->max_queues);
    *num_queues = n;
    return LGMP_OK;
}

int kv_client_session_init(struct kv_client *c, struct kv_host_info *info, struct kv_error *err)
{
    memset(info, 0, sizeof *info);
    forget_session(c);
    c->lgmp_size = c->shm.size;

    const struct kv_proto *p = find_layout(c, err);
    if (!p) {
        if (err && err->code == LGMP_ERR_INVALID_VERSION)
            info->lgmp_version = (uint32_t)err->value;
        return err ? err->code : LGMP_ERR_INVALID_MAGIC;
    }
    c->p = p;
    info->lgmp_version = p->lgmp;
    if (p->pow2_rings)
        c->lgmp_size = lgmp_region_size(c);
    uint64_t ts = LOAD_SC(heartbeat_ptr(c, p));
    if (c->hb_p && c->hb_p != p) {
        /* The host changed protocol since kv_client_init: its heartbeat now lives elsewhere. */
        c->hb_p = p;
        __atomic_store_n(&c->hosttime, ts, __ATOMIC_RELAXED);
    }
    if (ts == __atomic_load_n(&c->hosttime, __ATOMIC_RELAXED))
        return kv_fail(err, LGMP_ERR_INVALID_SESSION, "lgmp.timestamp", ts, 0,
                       "the host's heartbeat is not moving: the host is not running (yet)");
    uint32_t session_id = LOAD_ACQ(hdr_u32(c, p->session_off));
    if (p->pow2_rings && session_id == 0)
        return kv_fail(err, LGMP_ERR_INVALID_SESSION, "lgmp.sessionID", 0, 0,
                       "the host's session id is 0: the host is still starting");
    uint32_t num_queues;
    int rc = load_num_queues(c, &num_queues, err);
    if (rc)
        return rc;
    uint32_t udata_size = LOAD(hdr_u32(c, p->udata_size_off));
    uint64_t udata_room = c->lgmp_size - p->udata_off;
    if (udata_size > MAX_UDATA || udata_size > udata_room)
        return kv_fail(err, KV_ERR_BAD_FIELD, "lgmp.udataSize", udata_size,
                       udata_room < MAX_UDATA ? udata_room : MAX_UDATA,
                       "user data size %u does not fit the shared memory", udata_size);
    memcpy(c->udata, c->shm.base + p->udata_off, udata_size);
    info->session_id = session_id;
    info->udata_size = udata_size;
    rc = parse_kvmfr(c, udata_size, info, err);
    if (rc)
        return rc;

    /* Queue table: find ours by id and validate what we will index with. */
    rc = scan_queue(c, &c->frame, num_queues, udata_size, err);
    if (!rc)
        rc = scan_queue(c, &c->cursor, num_queues, udata_size, err);
    if (rc)
        return rc;
    if (p->pow2_rings) {
        /* Everything above must come from one session: magic and id again, after a fence. */
        __atomic_thread_fence(__ATOMIC_ACQUIRE);
        if (LOAD(hdr_u32(c, p->magic_off)) != LGMP_PROTOCOL_MAGIC)
            return kv_fail(err, LGMP_ERR_CORRUPTED, "lgmp.magic", LOAD(hdr_u32(c, p->magic_off)),
                           LGMP_PROTOCOL_MAGIC, "the host's LGMP header changed while we read it");
        uint32_t again = LOAD(hdr_u32(c, p->session_off));
        if (again != session_id)
            return kv_fail(err, LGMP_ERR_INVALID_SESSION, "lgmp.sessionID", again, session_id,
                           "the host restarted while we read its header (session %u replaced %u)", again, session_id);
        /* LGMP 12 ids come from the host's counter: fetch-add, +1, never 0. */
        uint32_t *next = hdr_u32(c, offsetof(struct lgmp12_header, nextClientID));
        do
            c->cid = FETCH_ADD(next, 1) + 1;
        while (c->cid == 0);
    } else {
        while (!c->client_id) {
            if (getrandom(&c->client_id, sizeof c->client_id, 0) != sizeof c->client_id)
                c->client_id = (uint32_t)kv_now_ns() | 1u;
        }
        c->cid = c->client_id;
    }
    c->session_id = session_id;
    c->features = info->features;
    c->frame_seen_ns = c->frame_period_ns = 0;   /* the old session's frame rhythm is not this one's */
    __atomic_store_n(&c->hosttime, ts, __ATOMIC_RELAXED);
    __atomic_store_n(&c->last_heartbeat_ns, kv_now_ns(), __ATOMIC_RELAXED);
    c->have_session = 1;
    return LGMP_OK;
}

int kv_client_session_valid(struct kv_client *c, struct kv_error *err)
{
    if (!c->have_session)
        return kv_fail(err, KV_ERR_NOT_READY, "", 0, 0, "no session");
    if (LOAD(hdr_u32(c, c->p->magic_off)) != LGMP_PROTOCOL_MAGIC)
        return kv_fail(err, KV_ERR_SESSION_LOST, "lgmp.magic", 3, 0, "the host's LGMP header disappeared");
    uint32_t sid = LOAD(hdr_u32(c, c->p->session_off));
    if (sid != c->session_id)
        return kv_fail(err, KV_ERR_SESSION_LOST, "lgmp.sessionID", 1, 0,
                       "the host restarted (session %u replaced %u)", sid, c->session_id);
    /* LGMP 12 hosts publish the heartbeat only every >= 250 ms; the 1000 ms rule holds for both. */
    uint64_t ts = LOAD_SC(heartbeat_ptr(c, c->p));
    uint64_t now = kv_now_ns();
    if (ts != __atomic_load_n(&c->hosttime, __ATOMIC_RELAXED)) {
        __atomic_store_n(&c->hosttime, ts, __ATOMIC_RELAXED);
        __atomic_store_n(&c->last_heartbeat_ns, now, __ATOMIC_RELAXED);
        return LGMP_OK;
    }
    uint64_t last = __atomic_load_n(&c->last_heartbeat_ns, __ATOMIC_RELAXED);
    if (now - last > LGMP_HEARTBEAT_TIMEOUT_MS * 1000000ull)
        return kv_fail(err, KV_ERR_SESSION_LOST, "lgmp.timestamp", 2, LGMP_HEARTBEAT_TIMEOUT_MS,
                       "the host's heartbeat stopped for %llu ms", (unsigned long long)((now - last) / 1000000ull));
    return LGMP_OK;
}

/* ---- subscribe / unsubscribe ------------------------------------------------------------ */

int kv_client_subscribe(struct kv_client *c, uint32_t queue_id, struct kv_error *err)
{
    struct kv_queue_state *qs = queue_by_id(c, queue_id);
    if (!c->have_session || !qs)
        return kv_fail(err, KV_ERR_NOT_READY, "", queue_id, 0, "subscribe before session init");
    if (c->p->pow2_rings && !qs->subscribed) {
        /* LGMP 12 hosts may add queues after start: look again. */
        uint32_t num_queues;
        int rc = load_num_queues(c, &num_queues, err);
        if (!rc)
            rc = scan_queue(c, qs, num_queues, LOAD(hdr_u32(c, c->p->udata_size_off)), err);
        if (rc)
            return rc;
    }
    if (!qs->present)
        return kv_fail(err, LGMP_ERR_NO_SUCH_QUEUE, "queueID", queue_id, 0, "the host has no queue %u", queue_id);
    int rc = lock_or_fail(qs->lock, "queue lock", err);
    if (rc)
        return rc;

    uint32_t max_subs = c->p->max_subs;
    uint64_t subs = subs_load(qs);
    uint64_t host_now = LOAD_SC(heartbeat_ptr(c, c->p));
    if (SUBS_ON(subs)) {
        /* Reclaim slots that were kicked (BAD) longer than their timeout ago. */
        for (uint32_t i = 0; i < max_subs; ++i) {
            if ((SUBS_BAD(subs) & (1u << i)) && host_now > LOAD(&qs->timeouts[i])) {
                subs &= ~(SUBS_BIT_ON(i) | SUBS_BIT_BAD(i));
                STORE(&qs->timeouts[i], 0);
                STORE(&qs->client_ids[i], 0);
            }
        }
    }
    uint32_t all = max_subs >= 32 ? 0xffffffffu : (1u << max_subs) - 1;
    uint32_t used = (SUBS_ON(subs) | SUBS_BAD(subs)) & all;
    if (used == all) {
        kv_unlock(qs->lock);
        return kv_fail(err, LGMP_ERR_QUEUE_FULL, "queue.subs", subs, max_subs,
                       "all %u subscriber slots of queue %u are taken (by other clients)", max_subs, queue_id);
    }
    /* Check the write position before taking a slot: a refusal must leave no ON bit or client id
     * behind, or every retry against a bad queue would leak another slot. */
    uint32_t pos = LOAD_SC(qs->position);
    if (pos >= qs->num_messages) {
        kv_unlock(qs->lock);
        return kv_fail(err, KV_ERR_BAD_FIELD, "queue.position", pos, qs->num_messages,
                       "queue %u's write position %u is outside its %u-slot ring", queue_id, pos, qs->num_messages);
    }
    uint32_t slot = (uint32_t)__builtin_ctz(~used);
    STORE(&qs->timeouts[slot], 0);
    STORE(&qs->client_ids[slot], c->cid);
    /* Don't inherit a previous owner's pending bits (the v6 race of spec 3.2 step 9; LGMP 12 does
     * the same). */
    for (uint32_t m = 0; m < qs->num_messages; ++m)
        FETCH_AND(MSG_PENDING(c, qs, m), ~(1u << slot));
    subs |= SUBS_BIT_ON(slot);
    subs_store(qs, subs);
    FETCH_ADD(qs->new_sub_count, 1);
    kv_unlock(qs->lock);

    qs->slot = slot;
    qs->read_pos = pos;
    qs->pinned = 0;
    qs->subscribed = 1;
    return LGMP_OK;
}

int kv_client_unsubscribe(struct kv_client *c, uint32_t queue_id)
{
    struct kv_queue_state *qs = queue_by_id(c, queue_id);
    if (!qs || !qs->subscribed)
        return LGMP_OK;
    qs->subscribed = 0;
    qs->pinned = 0;
    if (queue_id == LGMP_Q_FRAME)
        c->frame_peeked = 0, c->frame_seen_ns = c->frame_period_ns = 0;
    /* After a host restart the slot bits belong to the new session: leave them alone. */
    if (LOAD(hdr_u32(c, c->p->session_off)) != c->session_id ||
        LOAD(hdr_u32(c, c->p->magic_off)) != LGMP_PROTOCOL_MAGIC)
        return LGMP_ERR_INVALID_SESSION;
    struct kv_error e;
    if (lock_or_fail(qs->lock, "queue lock", &e))
        return e.code;
    uint64_t subs = subs_load(qs);
    if (SUBS_BAD(subs) & (1u << qs->slot)) {
        kv_unlock(qs->lock);
        return LGMP_ERR_QUEUE_TIMEOUT;   /* the slot stays until a subscriber reclaims it */
    }
    subs &= ~(SUBS_BIT_ON(qs->slot) | SUBS_BIT_BAD(qs->slot));
    subs_store(qs, subs);
    STORE(&qs->timeouts[qs->slot], 0);
    STORE(&qs->client_ids[qs->slot], 0);
    kv_unlock(qs->lock);
    return LGMP_OK;
}

/* LGMP 12: a message for us is the one carrying our pending bit. Not on ring[read_pos]: look under
 * the lock from `start` over `count` messages (the host may post to chosen clients only). */
static int find_pending(struct kv_client *c, struct kv_queue_state *qs, uint32_t pos, struct kv_error *err)
{
    uint32_t bit = 1u << qs->slot, n = qs->num_messages;
    if (LOAD_ACQ(MSG_PENDING(c, qs, qs->read_pos)) & bit)
        return LGMP_OK;
    uint32_t count = LOAD_ACQ(qs->count);
    if (count == 0 || (pos == qs->read_pos && count != n))
        return LGMP_ERR_QUEUE_EMPTY;   /* nothing posted since our last message */
    int rc = lock_or_fail(qs->lock, "queue lock", err);
    if (rc)
        return rc;
    uint32_t start = LOAD(qs->start);
    count = LOAD_ACQ(qs->count);
    rc = LGMP_ERR_QUEUE_EMPTY;
    if (start >= n || count > n) {
        rc = kv_fail(err, KV_ERR_BAD_FIELD, start >= n ? "queue.start" : "queue.count", start >= n ? start : count, n,
                     "queue %u's start %u / count %u do not fit its %u-slot ring", qs->queue_id, start, count, n);
    } else {
        for (uint32_t i = 0; i < count; ++i) {
            uint32_t idx = (start + i) & (n - 1);
            if (LOAD_ACQ(MSG_PENDING(c, qs, idx)) & bit) {
                qs->read_pos = idx;
                rc = LGMP_OK;
                break;
            }
        }
    }
    kv_unlock(qs->lock);
    return rc;
}

/* The checks Peek and Done share: still subscribed, not kicked, and is there a message? */
static int queue_check(struct kv_client *c, struct kv_queue_state *qs, uint32_t *position, struct kv_error *err)
{
    if (!c->have_session || !qs->subscribed)
        return kv_fail(err, KV_ERR_NOT_READY, "", qs->queue_id, 0, "not subscribed to queue %u", qs->queue_id);
    uint64_t subs = subs_load(qs);
    if (SUBS_BAD(subs) & (1u << qs->slot))
        return kv_fail(err, LGMP_ERR_QUEUE_TIMEOUT, "queue.subs", subs, 0,
                       "the host dropped us from queue %u (we were too slow to finish a message)", qs->queue_id);
    if (!(SUBS_ON(subs) & (1u << qs->slot))) {
        int rc = kv_client_session_valid(c, err);
        if (rc)
            return rc;
        return kv_fail(err, LGMP_ERR_QUEUE_UNSUBSCRIBED, "queue.subs", subs, 0,
                       "our subscription to queue %u disappeared", qs->queue_id);
    }
    uint32_t pos = LOAD_ACQ(qs->position);
    if (pos >= qs->num_messages)
        return kv_fail(err, KV_ERR_BAD_FIELD, "queue.position", pos, qs->num_messages,
                       "queue %u's write position %u is outside its %u-slot ring", qs->queue_id, pos, qs->num_messages);
    *position = pos;
    if (!c->p->pow2_rings)
        return pos == qs->read_pos ? LGMP_ERR_QUEUE_EMPTY : LGMP_OK;
    if (qs->pinned)
        return LGMP_OK;
    return find_pending(c, qs, pos, err);
}

/* Finish ring[read_pos]: clear our pending bit; if we were the last, dequeue it. B7 (spec 3.2 step 7):
 * without the lock, dequeue only if the lock is free. LGMP 12 (spec 4.2): always under the lock,
 * only a message inside [start, start+count), and msgTimeout only ever raised. */
static int finish_message(struct kv_client *c, struct kv_queue_state *qs, struct kv_error *err)
{
    uint32_t *pending = MSG_PENDING(c, qs, qs->read_pos);
    uint32_t bit = 1u << qs->slot;
    uint32_t n = qs->num_messages;
    int rc = LGMP_OK;
    if (!c->p->pow2_rings) {
        uint32_t prev = FETCH_AND(pending, ~bit);
        if ((prev & ~bit) == 0 && kv_try_lock(qs->lock)) {
            uint32_t start = LOAD(qs->start);
            if (start == qs->read_pos) {
                STORE(qs->start, (start + 1) % n);
                uint32_t count = FETCH_SUB(qs->count, 1);
                if (count == 0) {
                    STORE_SC(qs->count, 0);
                    rc = kv_fail(err, LGMP_ERR_CORRUPTED, "queue.count", 0, 0,
                                 "queue %u's message count went below zero", qs->queue_id);
                } else {
                    STORE_SC(qs->msg_timeout, LOAD_SC(heartbeat_ptr(c, c->p)) + LOAD(qs->max_time));
                }
            }
            kv_unlock(qs->lock);
        }
    } else if (qs->pinned) {
        /* A snapshot's chosen message: not ours to dequeue. */
        __atomic_fetch_and(pending, ~bit, __ATOMIC_ACQ_REL);
        qs->pinned = 0;
    } else {
        rc = lock_or_fail(qs->lock, "queue lock", err);
        if (rc)
            return rc;
        uint32_t start = LOAD(qs->start);
        uint32_t count = LOAD_ACQ(qs->count);
        uint32_t prev = __atomic_fetch_and(pending, ~bit, __ATOMIC_ACQ_REL);
        if (start >= n || count > n) {
            rc = kv_fail(err, KV_ERR_BAD_FIELD, start >= n ? "queue.start" : "queue.count", start >= n ? start : count,
                         n, "queue %u's start %u / count %u do not fit its %u-slot ring", qs->queue_id, start, count, n);
        } else if (((qs->read_pos - start) & (n - 1)) < count && (prev & ~bit) == 0 && start == qs->read_pos) {
            STORE(qs->start, (start + 1) & (n - 1));
            __atomic_fetch_sub(qs->count, 1, __ATOMIC_ACQUIRE);
            uint64_t t = LOAD_SC(heartbeat_ptr(c, c->p)) + LOAD(qs->max_time);
            if (t > LOAD(qs->msg_timeout))
                STORE(qs->msg_timeout, t);
        }
        kv_unlock(qs->lock);
    }
    qs->read_pos = ring_next(qs, qs->read_pos);
    return rc;
}

static int done(struct kv_client *c, struct kv_queue_state *qs, struct kv_error *err)
{
    uint32_t pos;
    int rc = queue_check(c, qs, &pos, err);
    if (rc == LGMP_ERR_QUEUE_EMPTY)
        return kv_fail(err, rc, "", 0, 0, "nothing to finish on queue %u", qs->queue_id);
    if (rc)
        return rc;
    return finish_message(c, qs, err);
}
/* ---- waiting ---------------------------------------------------------------------------- */

/* A poll costs a wake-up (~25 us of CPU on the 2-core VMs, measured): at 250 us that is 4000 a second, 1.6
 * CPU-ms per 60 fps frame spent waiting. While frames come steadily, the next one is not due before the
 * interval less a margin has passed, so until then kv_client_wait polls coarsely, every eighth of the interval
 * and at least every COARSE_POLL_US (a frame that does come that early waits at most that long: ~2 ms at
 * 60 fps; polls every 1 ms there cost ~12 wakes a frame, ~0.3 CPU-ms, against ~6); from there on, and
 * whenever frames do not come steadily, at poll_us. The margin is four times the intervals' smoothed jitter
 * plus FINE_MARGIN_NS, and at most a quarter of the interval: a steady 60 fps stream polls finely for ~1-2 ms
 * of its 16.7, a jittery one for its last quarter. */
#define COARSE_POLL_US      1000u
#define FINE_MARGIN_NS      500000ull     /* the fine polls start at least this long before a frame is due */
#define STEADY_MAX_NS       50000000ull   /* frames further apart (below 20 fps): no rhythm */

static void note_frame_rhythm(struct kv_client *c, uint64_t now)
{
    uint64_t gap = c->frame_seen_ns ? now - c->frame_seen_ns : 0;
    if (gap && gap <= STEADY_MAX_NS) {
        /* A gap under 3/4 of the interval: the rate rose (the coarse polls would make every frame late
         * until the 1/8 average caught up): start again from this gap. */
        if (!c->frame_period_ns || gap < c->frame_period_ns * 3 / 4) {
            c->frame_period_ns = gap;
            c->frame_jitter_ns = gap / 8;   /* not known yet: the widest margin (the last quarter) */
        } else {
            uint64_t off = gap > c->frame_period_ns ? gap - c->frame_period_ns : c->frame_period_ns - gap;
            c->frame_jitter_ns = (c->frame_jitter_ns * 7 + off) / 8;
            c->frame_period_ns = (c->frame_period_ns * 7 + gap) / 8;
        }
    } else
        c->frame_period_ns = 0;
    c->frame_seen_ns = now;
}

/* How long to sleep before the next poll of a wait for `mask` at `now`. */
static uint64_t poll_sleep_us(const struct kv_client *c, uint32_t mask, uint32_t poll_us, uint64_t now)
{
    if (mask != KV_READY_FRAME || !c->frame_period_ns || poll_us >= COARSE_POLL_US)
        return poll_us;
    uint64_t margin = 4 * c->frame_jitter_ns + FINE_MARGIN_NS;
    if (margin > c->frame_period_ns / 4)
        margin = c->frame_period_ns / 4;
    uint64_t fine_from = c->frame_seen_ns + c->frame_period_ns - margin;
    if (now + (uint64_t)poll_us * 1000u >= fine_from)
        return poll_us;
    uint64_t left_us = (fine_from - now) / 1000u;
    uint64_t coarse_us = c->frame_period_ns / 8000u;
    if (coarse_us < COARSE_POLL_US)
        coarse_us = COARSE_POLL_US;
    return left_us < coarse_us ? left_us : coarse_us;
}

int kv_client_wait(struct kv_client *c, uint32_t mask, uint32_t timeout_ms, uint32_t poll_us, uint32_t *ready,
                   struct kv_error *err)
{
    if (!poll_us)
        poll_us = c->poll_us;
    uint64_t start = kv_now_ns();
    uint64_t deadline = start + (uint64_t)timeout_ms * 1000000ull;
    uint64_t next_check = start;
    *ready = 0;
    for (;;) {
        uint32_t r = 0, pos;
        if (kv_guard_lost(c->shm.guard))
            return shm_lost_error(c, KV_LOST_FAULT, 0, err);
        if ((mask & KV_READY_FRAME) && c->frame.subscribed) {
            int rc = queue_check(c, &c->frame, &pos, err);
            if (rc == LGMP_OK)
                r |= KV_READY_FRAME;
            else if (rc != LGMP_ERR_QUEUE_EMPTY)
                return rc;
        }
        if ((mask & KV_READY_CURSOR) && c->cursor.subscribed) {
            int rc = queue_check(c, &c->cursor, &pos, err);
            if (rc == LGMP_OK)
                r |= KV_READY_CURSOR;
            else if (rc != LGMP_ERR_QUEUE_EMPTY)
                return rc;
        }
        if (r) {
            *ready = r;
            return LGMP_OK;
        }
        uint64_t now = kv_now_ns();
        if (now >= next_check) {
            uint64_t size_now;
            int why = kv_shm_lost(&c->shm, &size_now);
            if (why)
                return shm_lost_error(c, why, size_now, err);
            int rc = kv_client_session_valid(c, err);
            if (rc)
                return rc;
            next_check = now + SESSION_CHECK_NS;
        }
        if (now >= deadline)
            return LGMP_OK;
        kv_sleep_us((uint32_t)poll_sleep_us(c, mask, poll_us, now));
    }
}

/* ---- frames ----------------------------------------------------------------------------- */

/* The checks both KVMFR versions share, on our copy of the header (KVMFR 34's in KVMFR 20's shape):
 * HEAD's client checks (size, type, offset, rows inside the message, damage) plus B7's own. */
static int validate_frame(struct kv_client *c, const struct kvmfr_frame *f, uint32_t msg_size,
                          struct kv_frame_info *fi, struct kv_error *err)
{
    uint32_t bpp = kv_frame_bpp(f->type);
    if (f->type == FRAME_TYPE_INVALID || f->type >= FRAME_TYPE_MAX || !bpp)
        return kv_fail(err, KV_ERR_BAD_FIELD, "frame.type", f->type, FRAME_TYPE_MAX - 1,
                       "frame type %u is not a KVMFR %u frame type", f->type, c->p->kvmfr);
#define DIM(field, lo) \
    if (f->field > MAX_DIM || (lo && !f->field)) \
        return kv_fail(err, KV_ERR_BAD_FIELD, "frame." #field, f->field, MAX_DIM, \
                       "frame " #field " %u is outside %u..%u", f->field, (unsigned)(lo), MAX_DIM)
    DIM(frameWidth, 1u);
    DIM(frameHeight, 1u);
    DIM(screenWidth, 0u);
    DIM(screenHeight, 0u);
    DIM(dataWidth, 1u);
    DIM(dataHeight, 1u);
#undef DIM
    if (f->dataHeight > f->frameHeight)
        return kv_fail(err, KV_ERR_BAD_FIELD, "frame.dataHeight", f->dataHeight, f->frameHeight,
                       "frame stores %u rows but is only %u high", f->dataHeight, f->frameHeight);
    if (f->rotation > FRAME_ROT_270)
        return kv_fail(err, KV_ERR_BAD_FIELD, "frame.rotation", f->rotation, FRAME_ROT_270,
                       "frame rotation %u is not 0..3", f->rotation);
    uint32_t min_data_width = kv_data_width(f->type, f->frameWidth);
    uint64_t data_row_bytes = kv_row_bytes(f->type, f->dataWidth);
    if (f->dataWidth < min_data_width)
        return kv_fail(err, KV_ERR_BAD_FIELD, "frame.dataWidth", f->dataWidth, min_data_width,
                       "frame data is %u texels wide, too narrow for %u pixels", f->dataWidth, f->frameWidth);
    if (f->pitch < data_row_bytes || f->pitch > MAX_PITCH || (bpp != 3 && f->pitch % bpp))
        return kv_fail(err, KV_ERR_BAD_FIELD, "frame.pitch", f->pitch, data_row_bytes,
                       "frame pitch %u bytes does not fit rows of %llu bytes", f->pitch,
                       (unsigned long long)data_row_bytes);
    uint64_t data_size = (uint64_t)f->dataHeight * f->pitch;
    if (f->offset < c->p->frame_size || (f->offset & 3) || f->offset > msg_size - FB_WP_SIZE)
        return kv_fail(err, KV_ERR_BAD_FIELD, "frame.offset", f->offset, msg_size - FB_WP_SIZE,
                       "frame buffer offset %u is misaligned or outside the %u-byte message", f->offset, msg_size);
    if (data_size > (uint64_t)msg_size - f->offset - FB_WP_SIZE)
        return kv_fail(err, KV_ERR_BAD_FIELD, "frame.dataHeight", f->dataHeight,
                       ((uint64_t)msg_size - f->offset - FB_WP_SIZE) / f->pitch,
                       "%u rows of %u bytes do not fit the %u-byte message", f->dataHeight, f->pitch, msg_size);
    if (f->damageRectsCount > KVMFR_MAX_DAMAGE_RECTS)
        return kv_fail(err, KV_ERR_BAD_FIELD, "frame.damageRectsCount", f->damageRectsCount, KVMFR_MAX_DAMAGE_RECTS,
                       "frame has %u damage rectangles; at most %d", f->damageRectsCount, KVMFR_MAX_DAMAGE_RECTS);
    for (uint32_t i = 0; i < f->damageRectsCount; ++i) {
        const struct kvmfr_damage_rect *r = &f->damageRects[i];
        if (r->width == 0 || r->height == 0 ||
            (uint64_t)r->x + r->width > f->frameWidth || (uint64_t)r->y + r->height > f->frameHeight) {
            char field[48];
            snprintf(field, sizeof field, "frame.damageRects[%u]", i);
            return kv_fail(err, KV_ERR_BAD_FIELD, field, ((uint64_t)r->x << 32) | r->y,
                           ((uint64_t)f->frameWidth << 32) | f->frameHeight,
                           "damage rectangle %u (%u,%u %ux%u) is empty or outside the %ux%u frame",
                           i, r->x, r->y, r->width, r->height, f->frameWidth, f->frameHeight);
        }
    }
    kv_frame_info_from_wire(fi, f);
    fi->bytes_per_pixel = bpp;
    fi->msg_size = msg_size;
    fi->data_size = data_size;
    fi->row_len = kv_row_bytes(f->type, f->dataWidth);
    if (fi->row_len > f->pitch)
        fi->row_len = f->pitch;
    return LGMP_OK;
}

/* KVMFR 34's own values, where a wrong one would mislead the viewer (white level, HDR metadata). */
static int validate_frame34(const struct kvmfr34_frame *g, struct kv_error *err)
{
    const char *field = NULL;
    uint64_t value = 0, limit = 0;
    if (g->sdrWhiteLevel > MAX_NITS)
        field = "frame.sdrWhiteLevel", value = g->sdrWhiteLevel, limit = MAX_NITS;
    else if (g->hdrMaxDisplayLuminance > MAX_NITS)
        field = "frame.hdrMaxDisplayLuminance", value = g->hdrMaxDisplayLuminance, limit = MAX_NITS;
    else if (g->hdrMinDisplayLuminance > (uint64_t)g->hdrMaxDisplayLuminance * 10000u && g->hdrMaxDisplayLuminance)
        field = "frame.hdrMinDisplayLuminance", value = g->hdrMinDisplayLuminance,
        limit = (uint64_t)g->hdrMaxDisplayLuminance * 10000u;
    else if (g->hdrMaxContentLightLevel > MAX_NITS)
        field = "frame.hdrMaxContentLightLevel", value = g->hdrMaxContentLightLevel, limit = MAX_NITS;
    else if (g->hdrMaxFrameAverageLightLevel > MAX_NITS)
        field = "frame.hdrMaxFrameAverageLightLevel", value = g->hdrMaxFrameAverageLightLevel, limit = MAX_NITS;
    for (int i = 0; !field && i < 8; ++i) {
        uint32_t v = i < 6 ? g->hdrDisplayPrimary[i] : g->hdrWhitePoint[i - 6];
        if (v > MAX_CHROMA)
            field = i < 6 ? "frame.hdrDisplayPrimary" : "frame.hdrWhitePoint", value = v, limit = MAX_CHROMA;
    }
    if (field)
        return kv_fail(err, KV_ERR_BAD_FIELD, field, value, limit,
                       "frame %s %llu is beyond what a display can show (at most %llu)", field + 6,
                       (unsigned long long)value, (unsigned long long)limit);
    return LGMP_OK;
}

int kv_client_frame_peek(struct kv_client *c, struct kv_frame_info *fi, struct kv_error *err)
{
    struct kv_queue_state *qs = &c->frame;
    uint32_t pos;
    memset(fi, 0, sizeof *fi);
    c->frame_peeked = 0;
    int rc = queue_check(c, qs, &pos, err);
    if (rc)
        return rc;
    uint32_t msg_off = LOAD(msg_u32(c, qs, qs->read_pos, c->p->msg_offset_off));
    uint32_t msg_size = LOAD(msg_u32(c, qs, qs->read_pos, c->p->msg_size_off));
    uint32_t hdr_size = c->p->frame_size;
    fi->t_seen_ns = kv_now_ns();
    note_frame_rhythm(c, fi->t_seen_ns);
    /* The frame's write pointer (msg_off + frame.offset) is read with atomic loads, which must be
     * 4-byte aligned: both parts are checked for it (frame.offset in validate_frame). */
    if (msg_size < hdr_size || msg_off < c->p->header_size || (msg_off & 3) || !in_shm(c, msg_off, msg_size)) {
        kv_fail(err, KV_ERR_BAD_FIELD, msg_size < hdr_size ? "message.size" : "message.offset",
                msg_size < hdr_size ? msg_size : msg_off, c->lgmp_size,
                "frame message (offset %u, size %u) is too small, misaligned or outside the %llu-byte mapping",
                msg_off, msg_size, (unsigned long long)c->lgmp_size);
        finish_message(c, qs, NULL);
        return err ? err->code : KV_ERR_BAD_FIELD;
    }
    /* One copy; only the copy is checked and used. */
    struct kvmfr_frame f;
    struct kvmfr34_frame g;
    if (c->p->kvmfr == KVMFR34_VERSION) {
        memcpy(&g, c->shm.base + msg_off, sizeof g);
        memcpy(&f, &g, offsetof(struct kvmfr_frame, offset));
        f.offset = g.offset;
        f.flags = g.flags;
        f.damageRectsCount = g.damageRectsCount;
        memcpy(f.damageRects, g.damageRects, sizeof f.damageRects);
    } else {
        memcpy(&f, c->shm.base + msg_off, sizeof f);
    }
    rc = validate_frame(c, &f, msg_size, fi, err);
    if (!rc && c->p->kvmfr == KVMFR34_VERSION) {
        rc = validate_frame34(&g, err);
        if (!rc)
            kv_frame_info_from_wire34(fi, &g);
        fi->timing_valid = 0;   /* decided after the copy (kv_client_frame_copy) */
    }
    if (rc) {
        finish_message(c, qs, NULL);   /* skip the bad frame so the host does not drop us */
        return rc;
    }
    c->fb_offset = (uint64_t)msg_off + f.offset;
    c->frame_msg_off = msg_off;
    c->peeked = *fi;
    c->frame_peeked = 1;
    return LGMP_OK;
}

/* KVMFR 34 publishes a frame's stage durations after its pixels: timingSerial, then timingValid = 1
 * (release). Trust them only when both say they belong to the frame we copied. */
static void read_frame_timing(struct kv_client *c, struct kv_frame_info *fi)
{
    struct kvmfr34_frame *g = (struct kvmfr34_frame *)(c->shm.base + c->frame_msg_off);
    fi->timing_valid = 0;
    if (LOAD_ACQ(&g->timingValid) != 1 || LOAD(&g->timingSerial) != c->peeked.serial)
        return;
    /* The six u64 durations: a 4-aligned header leaves them unaligned for an atomic load; timingValid
     * and the serial check around them are what makes them consistent. */
    uint64_t t[6];
    memcpy(t, &g->captureTime, sizeof t);
    uint32_t flags = LOAD(&g->timingFlags);
    __atomic_thread_fence(__ATOMIC_ACQUIRE);
    if (LOAD(&g->timingSerial) != c->peeked.serial || LOAD(&g->timingValid) != 1)
        return;   /* the next frame's producer reset them while we read */
    fi->host_capture_ns = t[0], fi->host_post_process_ns = t[1], fi->host_copy_ns = t[2];
    fi->host_ready_ns = t[3], fi->host_hold_ns = t[4], fi->host_ready_lead_ns = t[5];
    fi->timing_flags = flags;
    fi->timing_valid = 1;
}
/* The write pointer as one frame's copy has seen it: the newest value, and the first with its time (the
 * producer's pace since then says how long the bytes still missing will take). */
struct wp_watch {
    uint32_t seen;
    uint32_t first;
    uint64_t t_first;     /* 0: not read yet */
};

#define WP_SLEEP_MIN_US   5u
#define WP_SLEEP_MAX_US   250u
/* wp_sleep_us multiplies a byte count below 2^32 by a time below 2 * FRAME_DEADLINE_NS: it fits in 64 bits
 * only while that is below 2^31 ns (an override of KV_FRAME_DEADLINE_NS must keep it so). */
_Static_assert(2 * FRAME_DEADLINE_NS < (1ull << 32), "wp_sleep_us's product would overflow 64 bits");

/* How long to sleep for `need` bytes at the producer's pace so far; WP_SLEEP_MIN_US before it is known.
 * Each wake costs ~25 us of CPU here, and a 5 us sleep lasts ~55 (timer slack): chasing a producer that
 * writes a 1080p frame in ~1.5 ms in such steps took ~30 wakes a frame. */
static uint32_t wp_sleep_us(const struct wp_watch *w, uint32_t v, uint64_t need, uint64_t now)
{
    if (!w->t_first || v <= w->first || now <= w->t_first)
        return WP_SLEEP_MIN_US;
    if (need - v > UINT32_MAX || now - w->t_first > 2 * FRAME_DEADLINE_NS)
        return WP_SLEEP_MAX_US;   /* not a copy's numbers; and below, the product fits in 64 bits */
    uint64_t est_us = (need - v) * (now - w->t_first) / (v - w->first) / 1000u;
    return est_us < WP_SLEEP_MIN_US ? WP_SLEEP_MIN_US : est_us > WP_SLEEP_MAX_US ? WP_SLEEP_MAX_US : (uint32_t)est_us;
}

/* Wait until the producer's write pointer covers `need` bytes. Only forward progress counts, and the
 * whole frame has a deadline, so a write pointer that flickers or crawls cannot hold us forever. */
static int wait_wp(struct kv_client *c, const uint32_t *wp, uint64_t need, struct wp_watch *w, uint64_t deadline,
                   struct kv_error *err)
{
    if (w->seen >= need)
        return LGMP_OK;
    uint64_t last_progress = kv_now_ns();
    for (unsigned spins = 0;; ++spins) {
        uint32_t v = LOAD_ACQ(wp);
        uint64_t now = kv_now_ns();
        if (!w->t_first)
            w->first = v, w->t_first = now;
        if (v >= need) {
            w->seen = v;
            return LGMP_OK;
        }
        if (v > w->seen) {
            w->seen = v;
            last_progress = now;
        } else if (now - last_progress > WP_STALL_NS || now > deadline) {
            return kv_fail(err, KV_ERR_WP_STALL, "framebuffer.wp", v, need,
                           "the host stopped writing the frame at byte %u of %llu", v, (unsigned long long)need);
        }
        if (spins < 64)
            __builtin_ia32_pause();
        else
            kv_sleep_us(spins < 256 ? wp_sleep_us(w, v, need, now) : 50);
        if (!c->have_session)
            return kv_fail(err, KV_ERR_NOT_READY, "", 0, 0, "session closed");
    }
}

int kv_client_frame_copy(struct kv_client *c, struct kv_frame_info *fi, uint8_t *dst, uint64_t dst_size,
                         uint32_t dst_pitch, int mode, struct kv_error *err)
{
    if (!c->frame_peeked)
        return kv_fail(err, KV_ERR_NOT_READY, "", 0, 0, "copy without a peeked frame");
    const struct kv_frame_info *p = &c->peeked;
    uint64_t row_len = p->row_len;
    if (dst_pitch < row_len || dst_size < (uint64_t)dst_pitch * (p->data_height - 1) + row_len)
        return kv_fail(err, KV_ERR_DST_TOO_SMALL, "dst", dst_size, (uint64_t)dst_pitch * (p->data_height - 1) + row_len,
                       "destination (%llu bytes, pitch %u) is too small for %u rows of %llu bytes",
                       (unsigned long long)dst_size, dst_pitch, p->data_height, (unsigned long long)row_len);
    const uint32_t *wp = (const uint32_t *)(c->shm.base + c->fb_offset);
    const uint8_t *src = c->shm.base + c->fb_offset + FB_WP_SIZE;
    struct wp_watch watch = { 0, 0, 0 };
    uint64_t copied = 0;
    int rc = LGMP_OK;
    fi->t_copy_start_ns = kv_now_ns();
    uint64_t deadline = fi->t_copy_start_ns + FRAME_DEADLINE_NS;

    if (mode == KV_COPY_DAMAGE && p->damage_count > 0) {
        for (uint32_t i = 0; i < p->damage_count && !rc; ++i) {
            const struct kvmfr_damage_rect *r = &p->damage[i];
            uint64_t x0, x1;
            kv_rect_columns(r, p->type, row_len, &x0, &x1);
            uint32_t y1 = r->y + r->height;
            if (y1 > p->data_height)
                y1 = p->data_height;
            for (uint32_t y = r->y; y < y1; ++y) {
                rc = wait_wp(c, wp, (uint64_t)y * p->pitch + x1, &watch, deadline, err);
                if (rc)
                    break;
                memcpy(dst + (uint64_t)y * dst_pitch + x0, src + (uint64_t)y * p->pitch + x0, x1 - x0);
                copied += x1 - x0;
            }
        }
    } else if (dst_pitch == p->pitch) {
        /* Same layout: copy in chunks as the producer publishes them (progressive read). */
        uint64_t total = (uint64_t)p->pitch * (p->data_height - 1) + row_len;
        while (copied < total) {
            uint64_t n = total - copied < FB_CHUNK_SIZE ? total - copied : FB_CHUNK_SIZE;
            rc = wait_wp(c, wp, copied + n, &watch, deadline, err);
            if (rc)
                break;
            /* Take whatever is already published, not just one chunk. */
            uint64_t avail = watch.seen > copied + n ? (watch.seen < total ? watch.seen : total) - copied : n;
            memcpy(dst + copied, src + copied, avail);
            copied += avail;
        }
    } else {
        for (uint32_t y = 0; y < p->data_height; ++y) {
            uint64_t row = (uint64_t)y * p->pitch;
            rc = wait_wp(c, wp, row + row_len, &watch, deadline, err);
            if (rc)
                break;
            memcpy(dst + (uint64_t)y * dst_pitch, src + row, row_len);
            copied += row_len;
        }
    }
    fi->t_copy_end_ns = kv_now_ns();
    fi->bytes_copied = copied;
    if (c->p->kvmfr == KVMFR34_VERSION)
        read_frame_timing(c, fi);
    c->frame_peeked = 0;
    int drc = done(c, &c->frame, rc ? NULL : err);
    return rc ? rc : drc;
}

int kv_client_frame_done(struct kv_client *c, struct kv_error *err)
{
    c->frame_peeked = 0;
    return done(c, &c->frame, err);
}

int kv_client_frame_skip_to_newest(struct kv_client *c, struct kv_error *err)
{
    struct kv_queue_state *qs = &c->frame;
    uint32_t pos;
    c->frame_peeked = 0;
    int rc = queue_check(c, qs, &pos, err);
    if (rc)
        return rc;
    /* Finish everything older than the newest message (spec 3.2 step 8). */
    while (ring_next(qs, qs->read_pos) != pos) {
        rc = finish_message(c, qs, err);
        if (rc)
            return rc;
    }
    return LGMP_OK;
}

/* ---- cursor ----------------------------------------------------------------------------- */

int kv_client_cursor_next(struct kv_client *c, struct kv_cursor_info *ci, uint8_t *shape, uint32_t shape_size,
                          struct kv_error *err)
{
    struct kv_queue_state *qs = &c->cursor;
    uint32_t pos;
    memset(ci, 0, sizeof *ci);
    int rc = queue_check(c, qs, &pos, err);
    if (rc)
        return rc;
    uint32_t flags = LOAD(msg_u32(c, qs, qs->read_pos, 0));   /* udata (the low word of LGMP 12's u64) */
    uint32_t msg_off = LOAD(msg_u32(c, qs, qs->read_pos, c->p->msg_offset_off));
    uint32_t msg_size = LOAD(msg_u32(c, qs, qs->read_pos, c->p->msg_size_off));
    uint32_t hdr_size = c->p->cursor_size;
    ci->t_seen_ns = kv_now_ns();
    if (msg_size < hdr_size || msg_off < c->p->header_size || !in_shm(c, msg_off, msg_size)) {
        kv_fail(err, KV_ERR_BAD_FIELD, msg_size < hdr_size ? "message.size" : "message.offset",
                msg_size < hdr_size ? msg_size : msg_off, c->lgmp_size,
                "cursor message (offset %u, size %u) is too small or outside the %llu-byte mapping",
                msg_off, msg_size, (unsigned long long)c->lgmp_size);
        finish_message(c, qs, NULL);
        return err ? err->code : KV_ERR_BAD_FIELD;
    }
    struct kvmfr34_cursor cur;   /* KVMFR 20's cursor is its first 24 bytes */
    memset(&cur, 0, sizeof cur);
    memcpy(&cur, c->shm.base + msg_off, hdr_size);
    const char *field = NULL;
    uint64_t value = 0, limit = 0;
    uint64_t bytes = 0;
    if (flags & CURSOR_FLAG_SHAPE) {
        uint64_t min_pitch = cur.type == CURSOR_TYPE_MONOCHROME ? (cur.width + 7) / 8 : (uint64_t)cur.width * 4;
        uint32_t max_h = cur.type == CURSOR_TYPE_MONOCHROME ? 2 * KVMFR_CURSOR_MAX_DIM : KVMFR_CURSOR_MAX_DIM;
        bytes = (uint64_t)cur.height * cur.pitch;
        if (cur.type > CURSOR_TYPE_MASKED_COLOR)
            field = "cursor.type", value = cur.type, limit = CURSOR_TYPE_MASKED_COLOR;
        else if (cur.width > KVMFR_CURSOR_MAX_DIM)
            field = "cursor.width", value = cur.width, limit = KVMFR_CURSOR_MAX_DIM;
        else if (cur.height > max_h || (cur.type == CURSOR_TYPE_MONOCHROME && (cur.height & 1)))
            field = "cursor.height", value = cur.height, limit = max_h;
        else if (cur.pitch < min_pitch || cur.pitch > MAX_CURSOR_PITCH)
            field = "cursor.pitch", value = cur.pitch, limit = min_pitch;
        else if (bytes > msg_size - hdr_size)
            field = "cursor.height", value = cur.height, limit = (msg_size - hdr_size) / cur.pitch;
    }
    if (!field && c->p->kvmfr == KVMFR34_VERSION) {
        /* A colour transform (which we do not apply) follows the shape: it must fit the message too. */
        if ((flags & CURSOR_FLAG_COLOR_TRANSFORM) && KVMFR_COLOR_TRANSFORM_SIZE > msg_size - hdr_size - bytes)
            field = "cursor.colorTransform", value = msg_size, limit = hdr_size + bytes + KVMFR_COLOR_TRANSFORM_SIZE;
        else if (cur.sdrWhiteLevel > MAX_NITS)
            field = "cursor.sdrWhiteLevel", value = cur.sdrWhiteLevel, limit = MAX_NITS;
    }
    if (field) {
        kv_fail(err, KV_ERR_BAD_FIELD, field, value, limit,
                "cursor %s (%ux%u, type %u, pitch %u, flags %u) is invalid or does not fit its %u-byte message",
                field + 7, cur.width, cur.height, cur.type, cur.pitch, flags, msg_size);
        finish_message(c, qs, NULL);
        return KV_ERR_BAD_FIELD;
    }
    ci->flags = flags;
    ci->x = cur.x;
    ci->y = cur.y;
    ci->sdr_white_level = cur.sdrWhiteLevel;
    if (flags & CURSOR_FLAG_SHAPE) {
        if (bytes > shape_size) {
            kv_fail(err, KV_ERR_DST_TOO_SMALL, "shape", shape_size, bytes, "shape buffer too small");
            finish_message(c, qs, NULL);
            return KV_ERR_DST_TOO_SMALL;
        }
        memcpy(shape, c->shm.base + msg_off + hdr_size, bytes);
        ci->type = cur.type;
        ci->hx = cur.hx;
        ci->hy = cur.hy;
        ci->width = cur.width;
        ci->height = cur.height;
        ci->pitch = cur.pitch;
        ci->shape_size = (uint32_t)bytes;
    }
    return finish_message(c, qs, err);
}

/* ---- client -> host messages ------------------------------------------------------------ */

int kv_client_send(struct kv_client *c, const uint8_t *data, uint32_t size, uint32_t *serial, struct kv_error *err)
{
    struct kv_queue_state *qs = &c->cursor;
    if (!c->have_session || !qs->subscribed)
        return kv_fail(err, KV_ERR_NOT_READY, "", 0, 0, "send needs a subscribed pointer queue");
    if (size > LGMP_MSGS_SIZE)
        return kv_fail(err, LGMP_ERR_INVALID_SIZE, "size", size, LGMP_MSGS_SIZE, "message too large");
    uint32_t max = c->p->msgs_max;
    if (SUBS_BAD(subs_load(qs)) & (1u << qs->slot))
        return kv_fail(err, LGMP_ERR_QUEUE_TIMEOUT, "queue.subs", 0, 0, "the host dropped us from the pointer queue");
    if (LOAD_SC(qs->c_avail) == 0)
        return kv_fail(err, LGMP_ERR_QUEUE_FULL, "queue.cMsgAvail", 0, max, "the host's message ring is full");
    /* LGMP 12: the queue lock too, so the host's subscriber check sees our stamped id. */
    int rc = c->p->pow2_rings ? lock_or_fail(qs->lock, "queue lock", err) : LGMP_OK;
    if (rc)
        return rc;
    rc = lock_or_fail(qs->c_lock, "client message lock", err);
    if (rc) {
        if (c->p->pow2_rings)
            kv_unlock(qs->lock);
        return rc;
    }
    uint32_t avail = LOAD_SC(qs->c_avail);
    uint32_t wpos = LOAD_SC(qs->c_wpos);
    if (avail == 0 || avail > max || wpos >= max) {
        if (avail == 0)
            rc = kv_fail(err, LGMP_ERR_QUEUE_FULL, "queue.cMsgAvail", 0, max, "the host's message ring is full");
        else
            rc = kv_fail(err, KV_ERR_BAD_FIELD, avail > max ? "queue.cMsgAvail" : "queue.cMsgWPos",
                         avail > max ? avail : wpos, max, "client message ring state is corrupt");
    } else {
        uint8_t *m = qs->cmsgs + (uint64_t)wpos * c->p->cmsg_stride;
        STORE((uint32_t *)m, size);
        if (c->p->pow2_rings)
            STORE(&((struct lgmp12_client_message *)m)->clientID, c->cid);
        memcpy(m + c->p->cmsg_data_off, data, size);
        STORE_SC(qs->c_wpos, (wpos + 1) % max);
        FETCH_SUB(qs->c_avail, 1);
        *serial = FETCH_ADD(qs->c_wserial, 1) + 1;
    }
    kv_unlock(qs->c_lock);
    if (c->p->pow2_rings)
        kv_unlock(qs->lock);
    return rc;
}

int kv_client_set_cursor_pos(struct kv_client *c, int32_t x, int32_t y, uint32_t timeout_ms, struct kv_error *err)
{
    if (!(c->features & KVMFR_FEATURE_SETCURSORPOS))
        return kv_fail(err, KV_ERR_NOT_READY, "kvmfr.features", c->features, KVMFR_FEATURE_SETCURSORPOS,
                       "the host cannot move the guest cursor (no SETCURSORPOS feature)");
    struct kvmfr_set_cursor_pos msg = { .type = KVMFR_MESSAGE_SETCURSORPOS, .x = x, .y = y };
    uint32_t serial;
    int rc = kv_client_send(c, (const uint8_t *)&msg, sizeof msg, &serial, err);
    if (rc)
        return rc;
    uint32_t *rserial = c->cursor.c_rserial;
    uint64_t deadline = kv_now_ns() + (uint64_t)timeout_ms * 1000000ull;
    while ((int32_t)(LOAD_SC(rserial) - serial) < 0) {
        if (kv_now_ns() > deadline)
            return kv_fail(err, KV_ERR_TIMEOUT, "queue.cMsgRSerial", LOAD(rserial), serial,
                           "the host did not acknowledge the cursor move within %u ms", timeout_ms);
        kv_sleep_us(1000);
    }
    return LGMP_OK;
}

int kv_client_set_window_size(struct kv_client *c, uint32_t w, uint32_t h, struct kv_error *err)
{
    if (!c->have_session || c->p->kvmfr != KVMFR34_VERSION || !(c->features & KVMFR_FEATURE_WINDOWSIZE))
        return kv_fail(err, KV_ERR_NOT_READY, "kvmfr.features", c->features, KVMFR_FEATURE_WINDOWSIZE,
                       "the host cannot resize the guest display (it needs a Looking Glass master host with "
                       "the WINDOWSIZE feature)");
    struct kvmfr_window_size msg = { .type = KVMFR_MESSAGE_WINDOWSIZE, .w = w, .h = h };
    uint32_t serial;
    return kv_client_send(c, (const uint8_t *)&msg, sizeof msg, &serial, err);
}

int kv_client_queue_stats(struct kv_client *c, uint32_t queue_id, struct kv_queue_stats *st)
{
    struct kv_queue_state *qs = queue_by_id(c, queue_id);
    memset(st, 0, sizeof *st);
    st->slot = 0xffffffffu;
    if (!qs || !qs->present || !c->have_session)
        return LGMP_ERR_NO_SUCH_QUEUE;
    st->position = LOAD(qs->position);
    st->start = LOAD(qs->start);
    st->count = LOAD(qs->count);
    st->num_messages = qs->num_messages;
    st->subs = qs->subs64 ? LOAD(qs->subs64) : LOAD(qs->subs32);   /* as the wire holds it */
    st->new_sub_count = LOAD(qs->new_sub_count);
    if (qs->subscribed)
        st->slot = qs->slot;
    return LGMP_OK;
}

int kv_client_set_read_pos(struct kv_client *c, uint32_t queue_id, uint32_t pos, struct kv_error *err)
{
    struct kv_queue_state *qs = queue_by_id(c, queue_id);
    if (!qs || !qs->subscribed)
        return kv_fail(err, KV_ERR_NOT_READY, "", queue_id, 0, "not subscribed to queue %u", queue_id);
    if (pos >= qs->num_messages)
        return kv_fail(err, LGMP_ERR_INVALID_ARGUMENT, "pos", pos, qs->num_messages, "position outside the ring");
    qs->read_pos = pos;
    qs->pinned = 1;
    if (queue_id == LGMP_Q_FRAME)
        c->frame_peeked = 0, c->frame_seen_ns = c->frame_period_ns = 0;
    return LGMP_OK;
}
