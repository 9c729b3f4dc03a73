/* LGMP producer (the "host application" side) for both Looking Glass protocols: B7 (LGMP 6 / KVMFR 20,
 * spec sections 3.1, 5.4-5.7, 9.2) and master (LGMP 12 / KVMFR 34, sections 4.1, 4.2, 6), chosen by
 * kv_host_info.lgmp_version at kv_producer_start. One producer: where the versions differ it reads the
 * per-version table below (offsets, ring rules, record sizes) and the queue words through pointers bound
 * to the version's descriptor; everything else (allocation order, posting, garbage collection, healing)
 * is shared.
 *
 * Used by the guest agent and by tests. Clients share the queue words with us, so what they write
 * (subscriber bits, start, client messages) is read once and checked like any other shared value.
 */
#include "kv_internal.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdlib.h>
#include <sys/random.h>
#include <unistd.h>

#define MSG_RING 32u   /* client messages drained but not yet taken by the caller */
#ifndef KV_SHARED_LOCK_TIMEOUT_US      /* the fuzz harness builds with a shorter one */
#define KV_SHARED_LOCK_TIMEOUT_US 50000u   /* clients hold a queue lock for microseconds; 50 ms is "never" */
#endif
#define SHARED_LOCK_TIMEOUT_US KV_SHARED_LOCK_TIMEOUT_US
#define UDATA_MAX 1024u
#define MAX_SMALL_BLOCKS 32u   /* the larger pointer ring (LGMP 12) */
#define NO_FIELD 0xffffffffu

/* Clients write to the queue words we share with them, and a hostile or broken guest can write
 * anything anywhere. Nothing the producer waits for is unbounded: a lock is given up after
 * SHARED_LOCK_TIMEOUT_US, a full queue after the caller's timeout, and a subscriber that never
 * finishes is kicked after KVMFR_SUB_TIMEOUT_MS by our own clock (not the shared maxTime).
 * A region whose words contradict what we wrote (magic, session id, queue table, a count that
 * does not match start..position, a lock that is never released) is re-initialised with a new
 * session id, exactly like a host restart, which every client already handles. */

/* What differs between the two protocols. Offsets come from the wire structs (offsetof), never restated. */
struct lgmp_rules {
    uint32_t lgmp_version, kvmfr_version;
    uint32_t header_size, udata_offset, queues_offset, queue_size;
    uint32_t magic_at, version_at, session_at, timestamp_at, num_queues_at, udata_size_at;
    uint32_t next_client_id_at;          /* NO_FIELD in LGMP 6 */
    uint32_t max_subs, msgs_max;
    uint32_t spare_slot;                 /* 1: B7's sentinel slot; 0: power-of-two rings, full at count == n */
    uint32_t ring_align;
    uint32_t msg_size, msg_udata64, msg_size_at, msg_offset_at, msg_pend_at;
    uint32_t cmsg_size, cmsg_data_at, cmsg_client_id_at;   /* cmsg_client_id_at: NO_FIELD in LGMP 6 */
    uint32_t pointer_len;
    uint32_t cursor_size;                /* KVMFRCursor before the shape */
    uint32_t heartbeat_ms;               /* publish `timestamp` at most this often (0: every tick) */
};

static const struct lgmp_rules RULES_B7 = {
    .lgmp_version = LGMP_PROTOCOL_VERSION, .kvmfr_version = KVMFR_VERSION,
    .header_size = LGMP_HEADER_SIZE, .udata_offset = LGMP_UDATA_OFFSET,
    .queues_offset = offsetof(struct lgmp_header, queues), .queue_size = sizeof(struct lgmp_header_queue),
    .magic_at = offsetof(struct lgmp_header, magic), .version_at = offsetof(struct lgmp_header, version),
    .session_at = offsetof(struct lgmp_header, sessionID), .timestamp_at = offsetof(struct lgmp_header, timestamp),
    .num_queues_at = offsetof(struct lgmp_header, numQueues), .udata_size_at = offsetof(struct lgmp_header, udataSize),
    .next_client_id_at = NO_FIELD,
    .max_subs = LGMP_MAX_SUBS, .msgs_max = LGMP_MSGS_MAX, .spare_slot = 1, .ring_align = 4,
    .msg_size = sizeof(struct lgmp_header_message), .msg_udata64 = 0,
    .msg_size_at = offsetof(struct lgmp_header_message, size),
    .msg_offset_at = offsetof(struct lgmp_header_message, offset),
    .msg_pend_at = offsetof(struct lgmp_header_message, pendingSubs),
    .cmsg_size = sizeof(struct lgmp_client_message), .cmsg_data_at = offsetof(struct lgmp_client_message, data),
    .cmsg_client_id_at = NO_FIELD,
    .pointer_len = LGMP_Q_POINTER_LEN, .cursor_size = sizeof(struct kvmfr_cursor), .heartbeat_ms = 0,
};

static const struct lgmp_rules RULES_MASTER = {
    .lgmp_version = LGMP12_PROTOCOL_VERSION, .kvmfr_version = KVMFR34_VERSION,
    .header_size = LGMP12_HEADER_SIZE, .udata_offset = LGMP12_UDATA_OFFSET,
    .queues_offset = offsetof(struct lgmp12_header, queues), .queue_size = sizeof(struct lgmp12_header_queue),
    .magic_at = offsetof(struct lgmp12_header, magic), .version_at = offsetof(struct lgmp12_header, version),
    .session_at = offsetof(struct lgmp12_header, sessionID),
    .timestamp_at = offsetof(struct lgmp12_header, timestamp),
    .num_queues_at = offsetof(struct lgmp12_header, numQueues),
    .udata_size_at = offsetof(struct lgmp12_header, udataSize),
    .next_client_id_at = offsetof(struct lgmp12_header, nextClientID),
    .max_subs = LGMP12_MAX_SUBS, .msgs_max = LGMP12_MSGS_MAX, .spare_slot = 0, .ring_align = LGMP12_RING_ALIGN,
    .msg_size = sizeof(struct lgmp12_header_message), .msg_udata64 = 1,
    .msg_size_at = offsetof(struct lgmp12_header_message, size),
    .msg_offset_at = offsetof(struct lgmp12_header_message, offset),
    .msg_pend_at = offsetof(struct lgmp12_header_message, pendingSubs),
    .cmsg_size = sizeof(struct lgmp12_client_message), .cmsg_data_at = offsetof(struct lgmp12_client_message, data),
    .cmsg_client_id_at = offsetof(struct lgmp12_client_message, clientID),
    .pointer_len = LGMP12_Q_POINTER_LEN, .cursor_size = sizeof(struct kvmfr34_cursor),
    .heartbeat_ms = LGMP12_HEARTBEAT_PUBLISH_MS,
};

struct prod_queue {
    uint32_t index;
    uint32_t num_messages;
    uint32_t write_index;        /* producer-private write position */
    uint64_t bad_since[LGMP_MAX_SUBS];   /* our clock (ms) when we first saw a slot kicked (BAD); 0: not */
    /* The descriptor's words, bound to the version's layout (bind_queue). */
    uint32_t *queue_id, *num_msgs, *new_sub_count, *max_time, *position, *messages_offset, *lock, *start, *count,
             *cmsg_lock, *cmsg_avail, *cmsg_wpos, *cmsg_wserial, *cmsg_rserial, *client_id;
    uint64_t *msg_timeout, *timeout;
    uint64_t *subs64;            /* LGMP 6: bits 63..32 ON, 31..0 BAD */
    uint32_t *subs32;            /* LGMP 12: bits 31..16 ON, 15..0 BAD */
    uint8_t  *cmsgs;
    uint8_t  *ring;
};

struct frame_slot {
    uint32_t offset;             /* SHM offset of the block (KVMFRFrame at its start) */
    int      damage_full;        /* every byte must be rewritten next time */
    uint32_t damage_count;
    struct kvmfr_damage_rect damage[KVMFR_MAX_DAMAGE_RECTS];
};

struct kv_producer {
    struct kv_shm shm;
    uint8_t *hdr;                /* the mapping's start (the LGMP header of either layout) */
    const struct lgmp_rules *r;  /* the running session's protocol */
    int      started;
    uint64_t heartbeat_at;       /* when `timestamp` was last published */
    uint32_t session_id;
    uint32_t page;
    uint32_t alloc_next;
    struct prod_queue fq, pq;

    uint32_t cursor_small[MAX_SMALL_BLOCKS];
    uint32_t cursor_shape[KVMFR_CURSOR_SHAPE_BLOCKS];
    uint32_t small_next, shape_next;
    int      have_shape;
    uint32_t last_shape_block;
    int      cursor_visible;

    struct frame_slot slots[2];
    uint32_t frame_block_size;
    uint32_t frame_next;
    int      last_posted_slot;   /* -1 before the first frame */
    int      cur_slot;           /* slot being written, -1 if none */
    struct kv_frame_info cur;
    uint32_t cur_wp;

    uint32_t cmsg_read;          /* host-private read index into cMsgs */
    uint32_t discarded;          /* LGMP 12 client messages from non-subscribers, dropped */
    /* kv_producer_set_changed: what the next frame changes in the picture, when it is not its damage. */
    int      have_changed;
    struct kv_frame_info changed;   /* only damage_count and damage[] are used */
    uint8_t  msgs[MSG_RING][LGMP_MSGS_SIZE];
    uint32_t msg_sizes[MSG_RING];
    uint32_t msg_head, msg_tail;

    struct kv_host_info host;    /* what start() wrote, kept to re-initialise a vandalised region */
    uint8_t  udata[UDATA_MAX];   /* private copy of the user data we wrote */
    uint32_t udata_size;
    uint32_t corrupt;            /* atomic: set when a shared word contradicts us; the next tick re-inits */
    char     corrupt_why[160];
    uint32_t reinits;            /* atomic: times the region was re-initialised */
    char     reinit_why[160];

    pthread_mutex_t mu;          /* posting and ticking, between the caller and the ticker thread; never
                                    held across an unbounded wait */
    pthread_t ticker;
    int      ticker_running;
    uint32_t tick_ms;
};

static uint32_t align_up(uint32_t v, uint32_t a) { return (v + a - 1) & ~(a - 1); }

/* ---- lifecycle -------------------------------------------------------------------------- */

struct kv_producer *kv_producer_new(void)
{
    struct kv_producer *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    p->shm.fd = -1;
    p->shm.guard = -1;
    p->last_posted_slot = -1;
    p->cur_slot = -1;
    pthread_mutex_init(&p->mu, NULL);
    return p;
}

void kv_producer_free(struct kv_producer *p)
{
    if (!p)
        return;
    kv_producer_stop_ticker(p);
    kv_producer_stop(p);
    kv_shm_unmap(&p->shm);
    pthread_mutex_destroy(&p->mu);
    free(p);
}

int kv_producer_open(struct kv_producer *p, const char *path, uint64_t create_size, struct kv_error *err)
{
    kv_shm_unmap(&p->shm);
    int rc = kv_shm_map(&p->shm, path, create_size, err);
    if (rc)
        return rc;
    p->hdr = p->shm.base;
    long page = sysconf(_SC_PAGESIZE);
    p->page = page > 0 ? (uint32_t)page : 4096u;
    return LGMP_OK;
}

uint64_t kv_producer_shm_size(struct kv_producer *p) { return p->shm.size; }
int kv_producer_shm_lost(struct kv_producer *p, uint64_t *size_now) { return kv_shm_lost(&p->shm, size_now); }

void kv_producer_close(struct kv_producer *p)
{
    kv_producer_stop_ticker(p);
    kv_producer_stop(p);
    pthread_mutex_lock(&p->mu);
    p->cur_slot = -1;
    p->last_posted_slot = -1;
    kv_shm_unmap(&p->shm);
    p->hdr = NULL;
    pthread_mutex_unlock(&p->mu);
}
uint32_t kv_producer_session_id(struct kv_producer *p) { return p->session_id; }
uint64_t kv_producer_max_frame_size(struct kv_producer *p) { return p->frame_block_size ? p->frame_block_size - p->page : 0; }

static int alloc(struct kv_producer *p, uint32_t size, uint32_t align, uint32_t *out, struct kv_error *err)
{
    uint64_t start = align_up(p->alloc_next, align);
    uint64_t sz = ((uint64_t)size + align - 1) & ~((uint64_t)align - 1);
    if (start + sz > p->shm.size)
        return kv_fail(err, KV_ERR_SHM_TOO_SMALL, "shm.size", p->shm.size, start + sz,
                       "shared memory too small: %llu bytes needed, %llu available",
                       (unsigned long long)(start + sz), (unsigned long long)p->shm.size);
    *out = (uint32_t)start;
    p->alloc_next = (uint32_t)(start + sz);
    return LGMP_OK;
}

/* The header's words of the running version. */
static uint32_t *hdr32(struct kv_producer *p, uint32_t at) { return (uint32_t *)(p->hdr + at); }
static uint64_t *hdr64(struct kv_producer *p, uint32_t at) { return (uint64_t *)(p->hdr + at); }

/* Point pq's word pointers at descriptor `q` (either layout: the field names are the same). */
#define BIND_QUEUE(pq, q) do { \
        (pq)->queue_id = &(q)->queueID; (pq)->num_msgs = &(q)->numMessages; \
        (pq)->new_sub_count = &(q)->newSubCount; (pq)->max_time = &(q)->maxTime; \
        (pq)->position = &(q)->position; (pq)->messages_offset = &(q)->messagesOffset; \
        (pq)->lock = &(q)->lock; (pq)->start = &(q)->start; (pq)->count = &(q)->count; \
        (pq)->cmsg_lock = &(q)->cMsgLock; (pq)->cmsg_avail = &(q)->cMsgAvail; (pq)->cmsg_wpos = &(q)->cMsgWPos; \
        (pq)->cmsg_wserial = &(q)->cMsgWSerial; (pq)->cmsg_rserial = &(q)->cMsgRSerial; \
        (pq)->client_id = (q)->clientID; (pq)->msg_timeout = &(q)->msgTimeout; (pq)->timeout = (q)->timeout; \
        (pq)->cmsgs = (uint8_t *)(q)->cMsgs; \
    } while (0)

static void bind_queue(struct kv_producer *p, struct prod_queue *pq, uint32_t index)
{
    uint8_t *at = p->hdr + p->r->queues_offset + (size_t)index * p->r->queue_size;
    pq->subs64 = NULL;
    pq->subs32 = NULL;
    if (p->r->lgmp_version == LGMP12_PROTOCOL_VERSION) {
        struct lgmp12_header_queue *q = (struct lgmp12_header_queue *)at;
        BIND_QUEUE(pq, q);
        pq->subs32 = &q->subs;
    } else {
        struct lgmp_header_queue *q = (struct lgmp_header_queue *)at;
        BIND_QUEUE(pq, q);
        pq->subs64 = &q->subs;
    }
}

/* Subscriber bits in one form for both versions: ON in bits 63..32, BAD in 31..0 (slots past the
 * version's max_subs dropped). */
static uint64_t load_subs(struct kv_producer *p, struct prod_queue *pq)
{
    if (pq->subs64)
        return LOAD_SC(pq->subs64);
    uint32_t raw = LOAD_SC(pq->subs32), mask = (1u << p->r->max_subs) - 1;
    return ((uint64_t)((raw >> 16) & mask) << 32) | (raw & mask);
}

static void store_subs(struct prod_queue *pq, uint64_t subs)
{
    if (pq->subs64)
        STORE_SC(pq->subs64, subs);
    else
        STORE_SC(pq->subs32, ((SUBS_ON(subs) & 0xffffu) << 16) | (SUBS_BAD(subs) & 0xffffu));
}

/* Ring message i's words. */
static uint8_t *msg_at(struct kv_producer *p, struct prod_queue *pq, uint32_t i)
{
    return pq->ring + (size_t)i * p->r->msg_size;
}
static uint32_t *msg_pend(struct kv_producer *p, struct prod_queue *pq, uint32_t i)
{
    return (uint32_t *)(msg_at(p, pq, i) + p->r->msg_pend_at);
}

/* Messages the ring holds at most: B7 keeps one slot empty, LGMP 12 rings fill up. */
static uint32_t ring_capacity(struct kv_producer *p, struct prod_queue *pq)
{
    return pq->num_messages - p->r->spare_slot;
}

static int create_queue(struct kv_producer *p, struct prod_queue *pq, uint32_t index, uint32_t queue_id,
                        uint32_t length, struct kv_error *err)
{
    const struct lgmp_rules *r = p->r;   /* the index is ours: numQueues is guest-writable */
    uint32_t n = length + r->spare_slot;
    uint32_t bytes = align_up(r->msg_size * n, r->ring_align);
    uint32_t off;
    int rc = alloc(p, bytes, r->ring_align, &off, err);
    if (rc)
        return rc;
    /* Hygiene the B7 host skips (spec 9.2 step 3): the whole descriptor (ids, timeouts, messages) and
     * the ring start zeroed. */
    memset(p->hdr + r->queues_offset + (size_t)index * r->queue_size, 0, r->queue_size);
    bind_queue(p, pq, index);
    *pq->queue_id = queue_id;
    *pq->num_msgs = n;
    *pq->max_time = KVMFR_SUB_TIMEOUT_MS;
    *pq->cmsg_avail = r->msgs_max;
    *pq->messages_offset = off;
    memset(p->shm.base + off, 0, bytes);
    STORE(hdr32(p, r->num_queues_at), index + 1);
    pq->index = index;
    pq->num_messages = n;
    pq->write_index = 0;
    memset(pq->bad_since, 0, sizeof pq->bad_since);
    pq->ring = p->shm.base + off;
    return LGMP_OK;
}

static uint32_t build_udata(const struct kv_host_info *host, uint8_t *u, uint32_t room)
{
    struct kvmfr_header kh;
    memset(&kh, 0, sizeof kh);
    memcpy(kh.magic, "KVMFR---", 8);
    kh.version = host->kvmfr_version;
    memcpy(kh.hostver, host->hostver, strnlen(host->hostver, sizeof kh.hostver - 1));
    kh.features = host->features;
    memcpy(u, &kh, sizeof kh);
    uint32_t pos = sizeof kh;

    size_t model_len = strnlen(host->model, sizeof host->model - 1);
    struct kvmfr_record rec = { .type = KVMFR_RECORD_VMINFO };
    rec.size = (uint32_t)(KVMFR_VMINFO_FIXED_SIZE + model_len + 1);
    if (pos + sizeof rec + rec.size <= room) {
        memcpy(u + pos, &rec, sizeof rec);
        uint8_t *v = u + pos + sizeof rec;
        memset(v, 0, rec.size);
        memcpy(v, host->uuid, 16);
        memcpy(v + 16, host->capture, strnlen(host->capture, 31));
        v[48] = host->cpus;
        v[49] = host->cores;
        v[50] = host->sockets;
        memcpy(v + 51, host->model, model_len);
        pos += sizeof rec + rec.size;
    }
    size_t os_len = strnlen(host->os_name, sizeof host->os_name - 1);
    rec.type = KVMFR_RECORD_OSINFO;
    rec.size = (uint32_t)(1 + os_len + 1);
    if (pos + sizeof rec + rec.size <= room) {
        memcpy(u + pos, &rec, sizeof rec);
        uint8_t *v = u + pos + sizeof rec;
        v[0] = (uint8_t)(host->os < 0 ? KVMFR_OS_OTHER : host->os);
        memcpy(v + 1, host->os_name, os_len);
        v[1 + os_len] = 0;
        pos += sizeof rec + rec.size;
    }
    return pos;
}

/* Note why the region is inconsistent (first reason wins until the next re-init). */
static void mark_corrupt(struct kv_producer *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void mark_corrupt(struct kv_producer *p, const char *fmt, ...)
{
    if (__atomic_exchange_n(&p->corrupt, 1, __ATOMIC_SEQ_CST))
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p->corrupt_why, sizeof p->corrupt_why, fmt, ap);
    va_end(ap);
}

/* Write a fresh session into the region (caller holds p->mu). keep_frame: a frame the caller is in
 * the middle of writing stays "current", so its remaining writes land harmlessly in its slot. */
static int start_locked(struct kv_producer *p, int keep_frame, struct kv_error *err)
{
    const struct lgmp_rules *r = p->r;
    uint8_t *udata = p->udata;
    uint32_t udata_size = build_udata(&p->host, udata, UDATA_MAX);
    if ((uint64_t)r->header_size + udata_size > p->shm.size)
        return kv_fail(err, KV_ERR_SHM_TOO_SMALL, "shm.size", p->shm.size, r->header_size + udata_size,
                       "shared memory too small for the LGMP header");
    p->udata_size = udata_size;
    /* Invalidate any previous session first, of either version (a B7 magic at 0, a master one at 9664);
     * the magic goes back last, once all is in place. */
    uint32_t old = LOAD(hdr32(p, r->session_at));
    STORE_SC((uint32_t *)(p->hdr + RULES_B7.magic_at), 0);
    if (p->shm.size >= RULES_MASTER.header_size)
        STORE_SC((uint32_t *)(p->hdr + RULES_MASTER.magic_at), 0);
    memset(p->hdr + sizeof(uint32_t), 0, r->header_size - sizeof(uint32_t));
    uint32_t sid = 0;
    while (sid == 0 || sid == old || sid == p->session_id) {
        if (getrandom(&sid, sizeof sid, 0) != sizeof sid)
            sid = (uint32_t)kv_now_ns();
    }
    p->session_id = sid;
    STORE(hdr32(p, r->session_at), sid);
    p->heartbeat_at = kv_now_ms();
    STORE_SC(hdr64(p, r->timestamp_at), p->heartbeat_at);
    STORE(hdr32(p, r->version_at), r->lgmp_version);
    STORE(hdr32(p, r->num_queues_at), 0);
    STORE(hdr32(p, r->udata_size_at), udata_size);
    memcpy(p->shm.base + r->udata_offset, udata, udata_size);

    /* Allocation order of the B7 host (spec 5.6), which the master host keeps (fixtures lg-master:
     * rings 64-aligned, 32 cursor blocks, 3 shape blocks, then the frames). */
    p->alloc_next = align_up(r->header_size + udata_size, 4);
    int rc = create_queue(p, &p->fq, 0, LGMP_Q_FRAME, LGMP_Q_FRAME_LEN, err);
    if (!rc)
        rc = create_queue(p, &p->pq, 1, LGMP_Q_POINTER, r->pointer_len, err);
    for (uint32_t i = 0; !rc && i < r->pointer_len; ++i)
        rc = alloc(p, r->cursor_size, 4, &p->cursor_small[i], err);
    for (uint32_t i = 0; !rc && i < KVMFR_CURSOR_SHAPE_BLOCKS; ++i)
        rc = alloc(p, r->cursor_size + KVMFR_CURSOR_SHAPE_MAX, 4, &p->cursor_shape[i], err);
    if (!rc) {
        /* Frame blocks: the B7 rule (spec 5.6), maxFrameSize = ((A - (page-1)) & ~(page-1)) / 2 for the
         * A bytes left, each block page-aligned. The master host keeps it: with the fixtures' 32 MiB,
         * A = 33554432 - 3157780 gives 15196160, exactly the blocks at 3158016 and 18354176 and the
         * frame messages' size there. */
        uint64_t remaining = p->shm.size - p->alloc_next;
        uint64_t max_frame = remaining > p->page ? ((remaining - (p->page - 1)) & ~((uint64_t)p->page - 1)) / 2 : 0;
        uint32_t block = align_up((uint32_t)max_frame, p->page);
        if (max_frame <= 2 * (uint64_t)p->page)
            rc = kv_fail(err, KV_ERR_SHM_TOO_SMALL, "shm.size", p->shm.size, p->alloc_next + 4ull * p->page,
                         "shared memory too small: no room left for frame buffers");
        for (int i = 0; !rc && i < 2; ++i) {
            rc = alloc(p, block, p->page, &p->slots[i].offset, err);
            if (!rc) {
                uint8_t *f = p->shm.base + p->slots[i].offset;
                memset(f, 0, sizeof(struct kvmfr34_frame));   /* the larger of the two headers */
                /* KVMFRFrame.offset sits at the same place in both versions (wire_check.h) */
                ((struct kvmfr_frame *)f)->offset = p->page - FB_WP_SIZE;
                STORE_SC((uint32_t *)(f + p->page - FB_WP_SIZE), 0);
                p->slots[i].damage_full = 1;
                p->slots[i].damage_count = 0;
            }
        }
        p->frame_block_size = block;
    }
    if (rc)
        return rc;
    p->small_next = p->shape_next = 0;
    p->have_shape = 0;
    p->last_posted_slot = -1;
    if (!keep_frame) {
        p->frame_next = 0;
        p->cur_slot = -1;
    }
    p->cmsg_read = 0;
    p->msg_head = p->msg_tail = 0;
    __atomic_store_n(&p->corrupt, 0, __ATOMIC_SEQ_CST);
    STORE_SC(hdr32(p, r->magic_at), LGMP_PROTOCOL_MAGIC);
    p->started = 1;
    return LGMP_OK;
}

int kv_producer_start(struct kv_producer *p, const struct kv_host_info *host, struct kv_error *err)
{
    if (!p->hdr)
        return kv_fail(err, KV_ERR_NOT_READY, "", 0, 0, "open the shared memory first");
    const struct lgmp_rules *r;
    if (host->lgmp_version == LGMP_PROTOCOL_VERSION)
        r = &RULES_B7;
    else if (host->lgmp_version == LGMP12_PROTOCOL_VERSION)
        r = &RULES_MASTER;
    else
        return kv_fail(err, LGMP_ERR_INVALID_VERSION, "lgmp_version", host->lgmp_version, LGMP12_PROTOCOL_VERSION,
                       "the producer speaks LGMP %u (B7) or %u (master), not %u", LGMP_PROTOCOL_VERSION,
                       LGMP12_PROTOCOL_VERSION, host->lgmp_version);
    pthread_mutex_lock(&p->mu);
    p->host = *host;
    p->host.kvmfr_version = r->kvmfr_version;
    p->r = r;
    int rc = start_locked(p, 0, err);
    pthread_mutex_unlock(&p->mu);
    return rc;
}
/* Do the queue words still say what we wrote? (caller holds p->mu) */
static int queue_consistent(struct kv_producer *p, struct prod_queue *pq, uint32_t queue_id)
{
    uint32_t v;
    if ((v = LOAD(pq->queue_id)) != queue_id || (v = LOAD(pq->num_msgs)) != pq->num_messages ||
        (v = LOAD(pq->messages_offset)) != (uint32_t)(pq->ring - p->shm.base)) {
        mark_corrupt(p, "queue %u's description in the queue table was overwritten", queue_id);
        return 0;
    }
    if ((v = LOAD(pq->position)) != pq->write_index) {
        mark_corrupt(p, "queue %u's write position was overwritten (%u, we wrote %u)", queue_id, v, pq->write_index);
        return 0;
    }
    if ((v = LOAD(pq->cmsg_avail)) > p->r->msgs_max || LOAD(pq->cmsg_wpos) >= p->r->msgs_max) {
        mark_corrupt(p, "queue %u's client message ring state was overwritten", queue_id);
        return 0;
    }
    return 1;
}

/* Is the region still the session we wrote? Marks it corrupt when not. (caller holds p->mu) */
static int region_consistent(struct kv_producer *p)
{
    const struct lgmp_rules *r = p->r;
    if (__atomic_load_n(&p->corrupt, __ATOMIC_SEQ_CST))
        return 0;
    if (LOAD_SC(hdr32(p, r->magic_at)) != LGMP_PROTOCOL_MAGIC || LOAD(hdr32(p, r->version_at)) != r->lgmp_version ||
        LOAD(hdr32(p, r->session_at)) != p->session_id) {
        mark_corrupt(p, "the LGMP header (magic, version or session id) was overwritten");
        return 0;
    }
    if (LOAD(hdr32(p, r->num_queues_at)) != 2 || LOAD(hdr32(p, r->udata_size_at)) != p->udata_size ||
        memcmp(p->shm.base + r->udata_offset, p->udata, p->udata_size) != 0) {
        mark_corrupt(p, "the LGMP header's queue count or KVMFR user data was overwritten");
        return 0;
    }
    return queue_consistent(p, &p->fq, LGMP_Q_FRAME) && queue_consistent(p, &p->pq, LGMP_Q_POINTER);
}

/* Re-initialise a region found inconsistent (caller holds p->mu). Returns 1 when it did. */
static int heal_locked(struct kv_producer *p)
{
    if (!p->started || region_consistent(p))
        return 0;
    snprintf(p->reinit_why, sizeof p->reinit_why, "%s", p->corrupt_why);
    struct kv_error e;
    if (start_locked(p, 1, &e) == LGMP_OK)
        __atomic_fetch_add(&p->reinits, 1, __ATOMIC_SEQ_CST);
    return 1;
}

uint32_t kv_producer_reinit_count(struct kv_producer *p, struct kv_error *why)
{
    pthread_mutex_lock(&p->mu);
    uint32_t n = __atomic_load_n(&p->reinits, __ATOMIC_SEQ_CST);
    if (why)
        kv_fail(why, n ? LGMP_ERR_CORRUPTED : LGMP_OK, "", n, 0, "%s", p->reinit_why);
    pthread_mutex_unlock(&p->mu);
    return n;
}

void kv_producer_stop(struct kv_producer *p)
{
    pthread_mutex_lock(&p->mu);
    if (p->started && p->hdr)
        STORE_SC(hdr32(p, p->r->magic_at), 0);   /* clients see the session end at once */
    p->started = 0;
    pthread_mutex_unlock(&p->mu);
}

/* ---- posting ---------------------------------------------------------------------------- */

/* Post one message (spec 3.1 step 4; LGMP 12: no spare slot, pendingSubs released). Caller holds p->mu. */
static int post(struct kv_producer *p, struct prod_queue *pq, uint32_t udata, uint32_t size, uint32_t offset)
{
    const struct lgmp_rules *r = p->r;
    if (!kv_lock(pq->lock, SHARED_LOCK_TIMEOUT_US)) {
        mark_corrupt(p, "queue %u's lock word stayed taken for over %u ms (value %u)", LOAD(pq->queue_id),
                     SHARED_LOCK_TIMEOUT_US / 1000, LOAD(pq->lock));
        return LGMP_ERR_CORRUPTED;
    }
    uint64_t subs = load_subs(p, pq);
    uint32_t pend = SUBS_ON(subs) & ~SUBS_BAD(subs);
    if (pend == 0) {
        kv_unlock(pq->lock);
        return LGMP_OK;   /* nobody listening: dropped, as the B7 and master hosts do */
    }
    uint32_t count = LOAD_SC(pq->count), cap = ring_capacity(p, pq);
    if (count > cap) {
        kv_unlock(pq->lock);
        mark_corrupt(p, "queue %u's message count was overwritten (%u)", LOAD(pq->queue_id), count);
        return LGMP_ERR_CORRUPTED;
    }
    if (count == cap) {
        kv_unlock(pq->lock);
        return LGMP_ERR_QUEUE_FULL;
    }
    uint8_t *m = msg_at(p, pq, pq->write_index);
    if (r->msg_udata64)
        STORE((uint64_t *)m, (uint64_t)udata);
    else
        STORE((uint32_t *)m, udata);
    STORE((uint32_t *)(m + r->msg_size_at), size);
    STORE((uint32_t *)(m + r->msg_offset_at), offset);
    STORE_SC((uint32_t *)(m + r->msg_pend_at), pend);
    if (FETCH_ADD(pq->count, 1) == 0)
        STORE_SC(pq->msg_timeout, kv_now_ms() + KVMFR_SUB_TIMEOUT_MS);
    pq->write_index = (pq->write_index + 1) % pq->num_messages;
    STORE_SC(pq->position, pq->write_index);
    kv_unlock(pq->lock);
    return LGMP_OK;
}

/* Post, retrying while the queue is full, up to timeout_ms. Takes p->mu around each try. */
static int post_wait(struct kv_producer *p, struct prod_queue *pq, uint32_t udata, uint32_t size, uint32_t offset,
                     uint32_t timeout_ms, struct kv_error *err)
{
    uint64_t deadline = kv_now_ns() + (uint64_t)timeout_ms * 1000000ull;
    for (;;) {
        pthread_mutex_lock(&p->mu);
        heal_locked(p);
        int rc = p->started ? post(p, pq, udata, size, offset) : KV_ERR_NOT_READY;
        if (rc == LGMP_ERR_CORRUPTED && heal_locked(p))
            rc = LGMP_OK;   /* a fresh session: nobody is subscribed to it yet, so the message is dropped */
        pthread_mutex_unlock(&p->mu);
        if (rc != LGMP_ERR_QUEUE_FULL)
            return rc ? kv_fail(err, rc, "", 0, 0, "producer not started") : LGMP_OK;
        if (kv_now_ns() > deadline)
            return kv_fail(err, LGMP_ERR_QUEUE_FULL, "queue.count", ring_capacity(p, pq), ring_capacity(p, pq),
                           "queue %u stayed full for %u ms", LOAD(pq->queue_id), timeout_ms);
        kv_sleep_us(100);
    }
}

/* ---- tick: heartbeat, garbage collection, client messages, re-posts --------------------- */

/* Subscriber slots nobody can use again unless we free them (caller holds the queue lock). A kicked
 * (BAD) slot is reclaimed by the next client that subscribes once the shared timeout[] has passed by the
 * shared heartbeat; but both are guest-writable, and a client reclaims only when some slot is ON. So:
 * a BAD bit without its ON bit (no subscriber ever is in that state) is cleared at once, and a slot
 * BAD for longer than a subscriber timeout by our own clock is freed here, as that client would. Without
 * this, subs = 0x00000000ffffffff (all BAD, none ON) or 32 kicked slots with far-future timeouts leave
 * no slot to subscribe to: no reader, so the agent (idle without subscribers) never posts again. */
static uint64_t free_dead_slots(struct kv_producer *p, struct prod_queue *pq, uint64_t subs, uint64_t now)
{
    for (uint32_t i = 0; i < p->r->max_subs; ++i) {
        uint32_t bit = 1u << i;
        if (!(SUBS_BAD(subs) & bit)) {
            pq->bad_since[i] = 0;
            continue;
        }
        if (!(SUBS_ON(subs) & bit)) {
            subs &= ~SUBS_BIT_BAD(i);
            pq->bad_since[i] = 0;
            continue;
        }
        if (!pq->bad_since[i]) {
            pq->bad_since[i] = now;   /* kicked by someone else: start our own clock */
        } else if (now - pq->bad_since[i] > KVMFR_SUB_TIMEOUT_MS) {
            subs &= ~(SUBS_BIT_ON(i) | SUBS_BIT_BAD(i));
            STORE(&pq->timeout[i], 0);
            STORE(&pq->client_id[i], 0);
            /* The next owner must not inherit this one's pending bits (a B7 client does not clear them). */
            for (uint32_t m = 0; m < pq->num_messages; ++m)
                FETCH_AND(msg_pend(p, pq, m), ~bit);
            pq->bad_since[i] = 0;
        }
    }
    return subs;
}

/* Client ids kicked (timed out) during one tick: LGMP 12 marks them BAD on every queue. */
struct kicked {
    uint32_t n;
    uint32_t ids[2 * LGMP12_MAX_SUBS];
};

static void kick_slots(struct kv_producer *p, struct prod_queue *pq, uint32_t bits, uint64_t now, struct kicked *k)
{
    for (uint32_t i = 0; i < p->r->max_subs; ++i)
        if (bits & (1u << i)) {
            STORE(&pq->timeout[i], now + KVMFR_SUB_TIMEOUT_MS);
            pq->bad_since[i] = now;
            uint32_t id = LOAD(&pq->client_id[i]);
            if (k && id && k->n < sizeof k->ids / sizeof k->ids[0])
                k->ids[k->n++] = id;
        }
}

static void gc_queue(struct kv_producer *p, struct prod_queue *pq, uint64_t now, struct kicked *k)
{
    uint32_t n = pq->num_messages;
    if (!kv_lock(pq->lock, SHARED_LOCK_TIMEOUT_US)) {
        mark_corrupt(p, "queue %u's lock word stayed taken for over %u ms (value %u)", LOAD(pq->queue_id),
                     SHARED_LOCK_TIMEOUT_US / 1000, LOAD(pq->lock));
        return;
    }
    /* Under the lock, start and count move together (clients dequeue under it too): the messages
     * from start to our write position are exactly count (a full LGMP 12 ring: count == n, start ==
     * position). Anything else was written by someone else. */
    uint32_t count = LOAD_SC(pq->count);
    uint32_t start = LOAD(pq->start);
    if (count > ring_capacity(p, pq) || start >= n || (pq->write_index + n - start) % n != count % n) {
        kv_unlock(pq->lock);
        mark_corrupt(p, "queue %u's start/count (%u/%u) do not match its %u messages", LOAD(pq->queue_id), start,
                     count, (pq->write_index + n - (start < n ? start : 0)) % n);
        return;
    }
    uint64_t subs = free_dead_slots(p, pq, load_subs(p, pq), now);
    if (count == 0) {
        store_subs(pq, subs);
        kv_unlock(pq->lock);
        return;
    }
    /* msgTimeout is shared too: a deadline further out than one subscriber timeout is not ours. */
    uint64_t msg_timeout = LOAD_SC(pq->msg_timeout);
    if (msg_timeout > now + KVMFR_SUB_TIMEOUT_MS) {
        msg_timeout = now + KVMFR_SUB_TIMEOUT_MS;
        STORE_SC(pq->msg_timeout, msg_timeout);
    }
    for (uint32_t walked = 0; walked < n && count > 0; ++walked) {
        uint32_t *pm = msg_pend(p, pq, start);
        uint32_t pend = LOAD_SC(pm) & SUBS_ON(subs);
        uint32_t new_bad = pend & ~SUBS_BAD(subs);
        if (new_bad && now > msg_timeout) {
            /* These subscribers missed the deadline: mark them bad and release the message. */
            subs |= new_bad;
            kick_slots(p, pq, new_bad, now, k);
            STORE_SC(pm, 0);
            pend = 0;
        }
        if (pend & ~SUBS_BAD(subs))
            break;
        start = (start + 1) % n;
        STORE(pq->start, start);
        count = FETCH_SUB(pq->count, 1) - 1;
        msg_timeout = now + KVMFR_SUB_TIMEOUT_MS;
        STORE_SC(pq->msg_timeout, msg_timeout);
    }
    store_subs(pq, subs);
    kv_unlock(pq->lock);
}

/* LGMP 12: a client that timed out on one queue is BAD on every queue where it holds a slot. */
static void kick_everywhere(struct kv_producer *p, struct prod_queue *pq, const struct kicked *k, uint64_t now)
{
    if (!k->n || !kv_lock(pq->lock, SHARED_LOCK_TIMEOUT_US))
        return;   /* a lock never released is found by the next gc_queue */
    uint64_t subs = load_subs(p, pq);
    uint32_t bits = 0;
    for (uint32_t i = 0; i < p->r->max_subs; ++i) {
        uint32_t id = LOAD(&pq->client_id[i]);
        for (uint32_t j = 0; j < k->n; ++j)
            if (id == k->ids[j] && (SUBS_ON(subs) & ~SUBS_BAD(subs) & (1u << i)))
                bits |= 1u << i;
    }
    if (bits) {
        kick_slots(p, pq, bits, now, NULL);
        store_subs(pq, subs | bits);
    }
    kv_unlock(pq->lock);
}

/* Is `id` an active (ON, not BAD) subscriber of the queue? (LGMP 12 client messages) */
static int active_client(struct kv_producer *p, struct prod_queue *pq, uint32_t id)
{
    uint64_t subs = load_subs(p, pq);
    uint32_t active = SUBS_ON(subs) & ~SUBS_BAD(subs);
    for (uint32_t i = 0; id && i < p->r->max_subs; ++i)
        if ((active & (1u << i)) && LOAD(&pq->client_id[i]) == id)
            return 1;
    return 0;
}

static void drain_client_messages(struct kv_producer *p)
{
    const struct lgmp_rules *r = p->r;
    struct prod_queue *pq = &p->pq;
    /* At most one ring's worth a tick, whatever cMsgAvail says. */
    for (uint32_t i = 0; i < r->msgs_max && LOAD_SC(pq->cmsg_avail) < r->msgs_max &&
                         p->msg_head - p->msg_tail < MSG_RING; ++i) {
        if (!kv_lock(pq->cmsg_lock, SHARED_LOCK_TIMEOUT_US)) {
            mark_corrupt(p, "the client message lock word stayed taken for over %u ms (value %u)",
                         SHARED_LOCK_TIMEOUT_US / 1000, LOAD(pq->cmsg_lock));
            return;
        }
        uint8_t *m = pq->cmsgs + (size_t)p->cmsg_read * r->cmsg_size;
        uint32_t size = LOAD((uint32_t *)m);
        if (size > LGMP_MSGS_SIZE)
            size = LGMP_MSGS_SIZE;   /* a client's bad size cannot make us read past the slot */
        if (r->cmsg_client_id_at != NO_FIELD && !active_client(p, pq, LOAD((uint32_t *)(m + r->cmsg_client_id_at)))) {
            FETCH_ADD(pq->cmsg_rserial, 1);   /* LGMP 12: not a subscriber's: discarded, counted as handled */
            p->discarded++;
        } else {
            uint32_t slot = p->msg_head % MSG_RING;
            memcpy(p->msgs[slot], m + r->cmsg_data_at, size);
            p->msg_sizes[slot] = size;
            p->msg_head++;
        }
        p->cmsg_read = (p->cmsg_read + 1) % r->msgs_max;
        FETCH_ADD(pq->cmsg_avail, 1);
        kv_unlock(pq->cmsg_lock);
    }
}

/* The cursor flags the version adds to every post (KVMFR 34: VISIBLE carries a real state). */
static uint32_t cursor_extra_flags(struct kv_producer *p)
{
    return p->r->kvmfr_version == KVMFR34_VERSION ? CURSOR_FLAG_VISIBLE_VALID : 0;
}

static void repost_to_new_subscribers(struct kv_producer *p)
{
    if (EXCHANGE(p->pq.new_sub_count, 0) && p->have_shape) {
        /* As B7: the newest shape block already holds type and shape; x/y are current. */
        uint32_t flags = CURSOR_FLAG_POSITION | CURSOR_FLAG_SHAPE | (p->cursor_visible ? CURSOR_FLAG_VISIBLE : 0) |
                         cursor_extra_flags(p);
        post(p, &p->pq, flags, p->r->cursor_size + KVMFR_CURSOR_SHAPE_MAX, p->last_shape_block);
    }
    if (EXCHANGE(p->fq.new_sub_count, 0) && p->last_posted_slot >= 0) {
        if (post(p, &p->fq, 0, p->frame_block_size, p->slots[p->last_posted_slot].offset) == LGMP_ERR_QUEUE_FULL)
            FETCH_ADD(p->fq.new_sub_count, 1);   /* try again next tick */
    }
}

int kv_producer_tick(struct kv_producer *p)
{
    pthread_mutex_lock(&p->mu);
    if (!p->started) {
        pthread_mutex_unlock(&p->mu);
        return KV_ERR_NOT_READY;
    }
    if (heal_locked(p)) {
        pthread_mutex_unlock(&p->mu);
        return LGMP_ERR_CORRUPTED;   /* re-initialised with a new session, as a host restart */
    }
    uint64_t now = kv_now_ms();
    /* B7 publishes the heartbeat every tick; LGMP 12 hosts at most every 250 ms (queues still every tick). */
    if (now - p->heartbeat_at >= p->r->heartbeat_ms) {
        STORE_SC(hdr64(p, p->r->timestamp_at), now);
        p->heartbeat_at = now;
    }
    struct kicked k = { 0 };
    gc_queue(p, &p->fq, now, &k);
    gc_queue(p, &p->pq, now, &k);
    if (p->r->next_client_id_at != NO_FIELD) {
        kick_everywhere(p, &p->fq, &k, now);
        kick_everywhere(p, &p->pq, &k, now);
    }
    drain_client_messages(p);
    repost_to_new_subscribers(p);
    pthread_mutex_unlock(&p->mu);
    return LGMP_OK;
}

static void *ticker_main(void *arg)
{
    struct kv_producer *p = arg;
    while (__atomic_load_n(&p->ticker_running, __ATOMIC_ACQUIRE)) {
        kv_producer_tick(p);
        kv_sleep_us(p->tick_ms * 1000u);
    }
    return NULL;
}

int kv_producer_start_ticker(struct kv_producer *p, uint32_t interval_ms)
{
    if (p->ticker_running)
        return LGMP_OK;
    p->tick_ms = interval_ms ? interval_ms : 10;
    __atomic_store_n(&p->ticker_running, 1, __ATOMIC_RELEASE);
    if (pthread_create(&p->ticker, NULL, ticker_main, p) != 0) {
        p->ticker_running = 0;
        return KV_ERR_NOT_READY;
    }
    return LGMP_OK;
}

void kv_producer_stop_ticker(struct kv_producer *p)
{
    if (!p->ticker_running)
        return;
    __atomic_store_n(&p->ticker_running, 0, __ATOMIC_RELEASE);
    pthread_join(p->ticker, NULL);
}

int kv_producer_subscribers(struct kv_producer *p, uint32_t queue_id)
{
    if (!p->started)
        return 0;
    struct prod_queue *pq = queue_id == LGMP_Q_FRAME ? &p->fq : &p->pq;
    uint64_t subs = load_subs(p, pq);
    return __builtin_popcount(SUBS_ON(subs) & ~SUBS_BAD(subs));
}

int kv_producer_next_message(struct kv_producer *p, uint8_t *data, uint32_t *size)
{
    pthread_mutex_lock(&p->mu);
    if (p->msg_tail == p->msg_head || !p->started) {
        pthread_mutex_unlock(&p->mu);
        return 0;
    }
    uint32_t slot = p->msg_tail % MSG_RING;
    memcpy(data, p->msgs[slot], p->msg_sizes[slot]);
    *size = p->msg_sizes[slot];
    p->msg_tail++;
    FETCH_ADD(p->pq.cmsg_rserial, 1);   /* handled: acknowledge (spec 3.1 step 5) */
    pthread_mutex_unlock(&p->mu);
    return 1;
}

/* ---- frames ----------------------------------------------------------------------------- */

static void slot_add_damage(struct frame_slot *s, const struct kv_frame_info *fi)
{
    if (s->damage_full)
        return;
    if (fi->damage_count == 0 || s->damage_count + fi->damage_count > KVMFR_MAX_DAMAGE_RECTS) {
        s->damage_full = 1;
        return;
    }
    memcpy(&s->damage[s->damage_count], fi->damage, fi->damage_count * sizeof fi->damage[0]);
    s->damage_count += fi->damage_count;
}

/* The changed rects apply to the next kv_producer_frame_begin call only: it clears them on every return
 * path (the caller sets them again before a retry). */
void kv_producer_set_changed(struct kv_producer *p, const struct kvmfr_damage_rect *rects, uint32_t count)
{
    pthread_mutex_lock(&p->mu);
    if (count > KVMFR_MAX_DAMAGE_RECTS) {
        p->have_changed = 0;   /* too many to track: the slots are rewritten whole */
    } else {
        if (count)   /* memcpy from a NULL pointer is undefined even for 0 bytes */
            memcpy(p->changed.damage, rects, count * sizeof rects[0]);
        p->changed.damage_count = count;
        p->have_changed = 1;
    }
    pthread_mutex_unlock(&p->mu);
}

static void changed_clear(struct kv_producer *p)
{
    pthread_mutex_lock(&p->mu);
    p->have_changed = 0;
    pthread_mutex_unlock(&p->mu);
}

int kv_producer_frame_begin(struct kv_producer *p, const struct kv_frame_info *fi, uint32_t timeout_ms,
                            struct kv_error *err)
{
    if (!p->started) {
        changed_clear(p);
        return kv_fail(err, KV_ERR_NOT_READY, "", 0, 0, "producer not started");
    }
    uint32_t bpp = kv_frame_bpp(fi->type);
    uint64_t row = kv_row_bytes(fi->type, fi->data_width);
    if (!bpp || fi->pitch < row || fi->data_height == 0 || fi->damage_count > KVMFR_MAX_DAMAGE_RECTS) {
        changed_clear(p);
        return kv_fail(err, LGMP_ERR_INVALID_ARGUMENT, "frame", fi->type, 0, "invalid frame description");
    }
    /* Backpressure: at most LGMP_Q_FRAME_LEN frames pending (spec 3.3, 5.6). */
    uint64_t deadline = kv_now_ns() + (uint64_t)timeout_ms * 1000000ull;
    for (;;) {
        uint32_t count = LOAD_SC(p->fq.count);
        if (count < LGMP_Q_FRAME_LEN)
            break;
        if (count > ring_capacity(p, &p->fq)) {
            mark_corrupt(p, "the frame queue's message count was overwritten (%u)", count);
            break;   /* healed below */
        }
        if (kv_now_ns() > deadline) {
            changed_clear(p);
            return kv_fail(err, KV_ERR_TIMEOUT, "queue.count", LGMP_Q_FRAME_LEN, LGMP_Q_FRAME_LEN,
                           "clients did not finish frames within %u ms", timeout_ms);
        }
        kv_sleep_us(100);
    }
    pthread_mutex_lock(&p->mu);
    heal_locked(p);
    int slot = (int)p->frame_next;
    p->frame_next ^= 1;
    struct frame_slot *s = &p->slots[slot];
    uint8_t *f = p->shm.base + s->offset;
    uint32_t *wp = (uint32_t *)(f + (p->page - FB_WP_SIZE));
    uint64_t room = p->frame_block_size - p->page;
    struct kv_frame_info cur = *fi;
    if ((uint64_t)cur.data_height * cur.pitch > room) {
        cur.data_height = (uint32_t)(room / cur.pitch);   /* shared memory too small: send what fits */
        cur.flags |= FRAME_FLAG_TRUNCATED;
    }
    cur.bytes_per_pixel = bpp;
    cur.data_size = (uint64_t)cur.data_height * cur.pitch;
    if (p->r->kvmfr_version == KVMFR34_VERSION) {
        struct kvmfr34_frame *f34 = (struct kvmfr34_frame *)f;
        /* The host's timings belong to this frame only once published after the copy (frame_end). */
        STORE_SC(&f34->timingValid, 0);
        cur.host_capture_ns = cur.host_post_process_ns = cur.host_copy_ns = 0;
        cur.host_ready_ns = cur.host_hold_ns = cur.host_ready_lead_ns = 0;
        cur.timing_flags = 0;
        if (!cur.sdr_white_level)
            cur.sdr_white_level = KVMFR_SDR_WHITE_LEVEL_DEFAULT;
        kv_frame_info_to_wire34(f34, &cur);
        f34->timingSerial = 0;
        f34->offset = p->page - FB_WP_SIZE;
    } else {
        kv_frame_info_to_wire((struct kvmfr_frame *)f, &cur);
        ((struct kvmfr_frame *)f)->offset = p->page - FB_WP_SIZE;
    }
    STORE_REL(wp, 0);
    for (int i = 0; i < 2; ++i)
        slot_add_damage(&p->slots[i], p->have_changed ? &p->changed : &cur);
    p->have_changed = 0;
    /* Post before writing the pixels, so clients can start reading at once (spec 5.4). */
    int rc = post(p, &p->fq, 0, p->frame_block_size, s->offset);
    if (rc == LGMP_ERR_CORRUPTED && heal_locked(p))
        rc = LGMP_OK;   /* nobody is subscribed to the fresh session yet: the frame is dropped */
    pthread_mutex_unlock(&p->mu);
    while (rc == LGMP_ERR_QUEUE_FULL || rc == LGMP_ERR_CORRUPTED) {
        if (kv_now_ns() > deadline)
            return kv_fail(err, KV_ERR_TIMEOUT, "queue.count", 0, 0, "the frame queue stayed full for %u ms",
                           timeout_ms);
        kv_sleep_us(100);
        pthread_mutex_lock(&p->mu);
        heal_locked(p);
        rc = post(p, &p->fq, 0, p->frame_block_size, s->offset);
        pthread_mutex_unlock(&p->mu);
    }
    p->last_posted_slot = slot;
    p->cur_slot = slot;
    p->cur = cur;
    p->cur_wp = 0;
    return rc;
}

static uint8_t *cur_data(struct kv_producer *p) { return p->shm.base + p->slots[p->cur_slot].offset + p->page; }
static uint32_t *cur_wp_ptr(struct kv_producer *p)
{
    return (uint32_t *)(p->shm.base + p->slots[p->cur_slot].offset + p->page - FB_WP_SIZE);
}

/* How far frame_write may publish the write pointer. KVMFR 34 clients read the host's stage timings when
 * their copy ends (spec 6: published after the copy, trusted when timingValid and timingSerial match), so
 * a master session holds the last row back until frame_end has published the timings: a client whose
 * copy ends with the frame then always finds them. B7 frames have no timings: everything at once. */
static uint64_t wp_publish_limit(struct kv_producer *p)
{
    const struct kv_frame_info *f = &p->cur;
    if (p->r->kvmfr_version != KVMFR34_VERSION)
        return f->data_size;
    return f->data_size > f->pitch ? f->data_size - f->pitch : 0;
}

int kv_producer_frame_write(struct kv_producer *p, const uint8_t *src, uint32_t src_pitch, uint32_t row0,
                            uint32_t rows, struct kv_error *err)
{
    if (p->cur_slot < 0)
        return kv_fail(err, KV_ERR_NOT_READY, "", 0, 0, "frame_write without frame_begin");
    const struct kv_frame_info *f = &p->cur;
    if (row0 >= f->data_height)
        return LGMP_OK;   /* rows past a truncated frame are dropped */
    if (rows > f->data_height - row0)
        rows = f->data_height - row0;
    uint32_t pitch = f->pitch;
    if (src_pitch < pitch)
        return kv_fail(err, LGMP_ERR_INVALID_ARGUMENT, "src_pitch", src_pitch, pitch, "source rows are too short");
    uint8_t *dst = cur_data(p);
    uint32_t *wp = cur_wp_ptr(p);
    uint64_t at = (uint64_t)row0 * pitch;
    uint64_t end = at + (uint64_t)rows * pitch;
    uint64_t published = p->cur_wp;
    uint64_t limit = wp_publish_limit(p);
    if (src_pitch == pitch) {
        /* One contiguous run: copy and publish a chunk at a time (spec 5.4, FB_CHUNK_SIZE). */
        while (at < end) {
            uint64_t n = end - at < FB_CHUNK_SIZE ? end - at : FB_CHUNK_SIZE;
            memcpy(dst + at, src + (at - (uint64_t)row0 * pitch), n);
            at += n;
            if (at <= limit)
                STORE_REL(wp, (uint32_t)at);
        }
    } else {
        for (uint32_t r = 0; r < rows; ++r) {
            memcpy(dst + at, src + (uint64_t)r * src_pitch, pitch);
            at += pitch;
            if ((at - published >= FB_CHUNK_SIZE || r + 1 == rows) && at <= limit) {
                STORE_REL(wp, (uint32_t)at);
                published = at;
            }
        }
    }
    if (at > limit && published < limit && limit > (uint64_t)row0 * pitch)
        STORE_REL(wp, (uint32_t)limit);   /* everything up to the held-back row */
    p->cur_wp = (uint32_t)end;
    return LGMP_OK;
}

int kv_producer_frame_write_damage(struct kv_producer *p, const uint8_t *src, uint32_t src_pitch, struct kv_error *err)
{
    if (p->cur_slot < 0)
        return kv_fail(err, KV_ERR_NOT_READY, "", 0, 0, "frame_write_damage without frame_begin");
    struct frame_slot *s = &p->slots[p->cur_slot];
    const struct kv_frame_info *f = &p->cur;
    if (src_pitch < f->pitch)
        return kv_fail(err, LGMP_ERR_INVALID_ARGUMENT, "src_pitch", src_pitch, f->pitch, "source rows are too short");
    if (s->damage_full) {
        int rc = kv_producer_frame_write(p, src, src_pitch, 0, f->data_height, err);
        if (rc)
            return rc;
    } else {
        /* The slot still holds the frame it carried last; rewrite what changed since then. */
        uint8_t *dst = cur_data(p);
        uint64_t row_len = kv_row_bytes(f->type, f->data_width);
        for (uint32_t i = 0; i < s->damage_count; ++i) {
            const struct kvmfr_damage_rect *r = &s->damage[i];
            uint64_t x0, x1;
            kv_rect_columns(r, f->type, row_len, &x0, &x1);
            uint32_t y1 = r->y + r->height < f->data_height ? r->y + r->height : f->data_height;
            for (uint32_t y = r->y; y < y1 && x0 < x1; ++y)
                memcpy(dst + (uint64_t)y * f->pitch + x0, src + (uint64_t)y * src_pitch + x0, x1 - x0);
        }
        if (wp_publish_limit(p) >= f->data_size)
            STORE_REL(cur_wp_ptr(p), (uint32_t)f->data_size);   /* KVMFR 34: frame_end publishes it */
        p->cur_wp = (uint32_t)f->data_size;
    }
    s->damage_full = 0;
    s->damage_count = 0;
    return LGMP_OK;
}

int kv_producer_frame_end(struct kv_producer *p) { return kv_producer_frame_end_timed(p, NULL); }

int kv_producer_frame_end_timed(struct kv_producer *p, const struct kv_frame_info *timing)
{
    if (p->cur_slot < 0)
        return KV_ERR_NOT_READY;
    struct frame_slot *s = &p->slots[p->cur_slot];
    if (p->cur_wp >= p->cur.data_size) {
        s->damage_full = 0;    /* every byte was written: the slot is in sync */
        s->damage_count = 0;
    } else {
        s->damage_full = 1;    /* partial write: next use of this slot rewrites it all */
    }
    if (timing && p->r->kvmfr_version == KVMFR34_VERSION) {
        /* KVMFR 34 (spec 6): the stage durations after the copy, then timingSerial, then timingValid
         * with release, so a client that sees timingValid sees the rest; then the held-back last row
         * (wp_publish_limit), so a client that has copied the whole frame sees timingValid. */
        struct kvmfr34_frame *f = (struct kvmfr34_frame *)(p->shm.base + s->offset);
        f->captureTime = timing->host_capture_ns;
        f->postProcessTime = timing->host_post_process_ns;
        f->copyTime = timing->host_copy_ns;
        f->readyTime = timing->host_ready_ns;
        f->holdTime = timing->host_hold_ns;
        f->readyLeadTime = timing->host_ready_lead_ns;
        f->timingFlags = timing->timing_flags;
        f->timingSerial = p->cur.serial;
        STORE_REL(&f->timingValid, 1);
    }
    STORE_REL(cur_wp_ptr(p), (uint32_t)p->cur.data_size);
    p->cur_slot = -1;
    return LGMP_OK;
}

/* ---- cursor ----------------------------------------------------------------------------- */

/* KVMFR 34's cursor carries the SDR white level after the B7 fields (the shape follows it). */
static void cursor_set_white(struct kv_producer *p, uint32_t block, const struct kv_cursor_info *ci)
{
    if (p->r->kvmfr_version == KVMFR34_VERSION)
        ((struct kvmfr34_cursor *)(p->shm.base + block))->sdrWhiteLevel =
            ci->sdr_white_level ? ci->sdr_white_level : KVMFR_SDR_WHITE_LEVEL_DEFAULT;
}

int kv_producer_cursor_post(struct kv_producer *p, const struct kv_cursor_info *ci, const uint8_t *shape,
                            uint32_t timeout_ms, struct kv_error *err)
{
    if (!p->started)
        return kv_fail(err, KV_ERR_NOT_READY, "", 0, 0, "producer not started");
    uint32_t block, size;
    pthread_mutex_lock(&p->mu);
    if (ci->flags & CURSOR_FLAG_SHAPE) {
        uint64_t bytes = (uint64_t)ci->height * ci->pitch;
        if (bytes > KVMFR_CURSOR_SHAPE_MAX || ci->width > KVMFR_CURSOR_MAX_DIM) {
            pthread_mutex_unlock(&p->mu);
            return kv_fail(err, LGMP_ERR_INVALID_ARGUMENT, "cursor", bytes, KVMFR_CURSOR_SHAPE_MAX, "shape too large");
        }
        block = p->cursor_shape[p->shape_next];
        p->shape_next = (p->shape_next + 1) % KVMFR_CURSOR_SHAPE_BLOCKS;
        size = p->r->cursor_size + KVMFR_CURSOR_SHAPE_MAX;
        struct kvmfr_cursor *c = (struct kvmfr_cursor *)(p->shm.base + block);
        c->x = (int16_t)ci->x;
        c->y = (int16_t)ci->y;
        c->type = ci->type;
        c->hx = (int8_t)ci->hx;
        c->hy = (int8_t)ci->hy;
        c->width = ci->width;
        c->height = ci->height;
        c->pitch = ci->pitch;
        cursor_set_white(p, block, ci);
        memcpy((uint8_t *)c + p->r->cursor_size, shape, bytes);
        p->last_shape_block = block;
        p->have_shape = 1;
    } else {
        block = p->cursor_small[p->small_next];
        p->small_next = (p->small_next + 1) % p->r->pointer_len;
        size = p->r->cursor_size;
        struct kvmfr_cursor *c = (struct kvmfr_cursor *)(p->shm.base + block);
        memset(c, 0, size);
        cursor_set_white(p, block, ci);
        c->x = (int16_t)ci->x;
        c->y = (int16_t)ci->y;
    }
    if (ci->flags & CURSOR_FLAG_POSITION && p->have_shape) {
        /* Keep the newest shape block's position current for re-posts to new clients. */
        struct kvmfr_cursor *sc = (struct kvmfr_cursor *)(p->shm.base + p->last_shape_block);
        sc->x = (int16_t)ci->x;
        sc->y = (int16_t)ci->y;
    }
    p->cursor_visible = (ci->flags & CURSOR_FLAG_VISIBLE) != 0;
    pthread_mutex_unlock(&p->mu);
    return post_wait(p, &p->pq, ci->flags | cursor_extra_flags(p), size, block, timeout_ms, err);
}

int kv_producer_queue_stats(struct kv_producer *p, uint32_t queue_id, struct kv_queue_stats *st)
{
    memset(st, 0, sizeof *st);
    st->slot = 0xffffffffu;
    if (!p->started)
        return KV_ERR_NOT_READY;
    struct prod_queue *pq = queue_id == LGMP_Q_FRAME ? &p->fq : &p->pq;
    st->position = LOAD(pq->position);
    st->start = LOAD(pq->start);
    st->count = LOAD(pq->count);
    st->num_messages = pq->num_messages;
    st->subs = load_subs(p, pq);
    st->new_sub_count = LOAD(pq->new_sub_count);
    return LGMP_OK;
}

uint32_t kv_producer_discarded_messages(struct kv_producer *p) { return p->discarded; }
