/* LGMP 6 / KVMFR 20 client: the reader side of shared/docs/lgmp-kvmfr.md sections 3.2-3.3 and 5.
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

struct kv_queue_state {
    uint32_t queue_id;
    int      present;            /* found in the header at session init */
    int      subscribed;
    uint32_t index;
    uint32_t num_messages;       /* validated copy */
    uint32_t messages_offset;    /* validated copy */
    uint32_t slot;
    uint32_t read_pos;
};

struct kv_client {
    struct kv_shm shm;
    struct lgmp_header *hdr;
    uint32_t poll_us;
    uint32_t client_id;
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
    uint8_t  udata[MAX_UDATA];
};

/* ---- small helpers ---------------------------------------------------------------------- */

static inline struct lgmp_header_queue *queue_ptr(struct kv_client *c, const struct kv_queue_state *qs)
{
    return &c->hdr->queues[qs->index];
}

static inline struct lgmp_header_message *ring_ptr(struct kv_client *c, const struct kv_queue_state *qs)
{
    return (struct lgmp_header_message *)(c->shm.base + qs->messages_offset);
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

/* Is [off, off+len) inside the mapping? (no overflow: all 64-bit) */
static inline int in_shm(const struct kv_client *c, uint64_t off, uint64_t len)
{
    return off <= c->shm.size && len <= c->shm.size - off;
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

int kv_client_open(struct kv_client *c, const char *path, struct kv_error *err)
{
    kv_shm_unmap(&c->shm);
    int rc = kv_shm_map(&c->shm, path, 0, err);
    if (rc)
        return rc;
    c->hdr = (struct lgmp_header *)c->shm.base;
    return LGMP_OK;
}

uint64_t kv_client_shm_size(struct kv_client *c) { return c->shm.size; }
int kv_client_shm_lost(struct kv_client *c, uint64_t *size_now) { return kv_shm_lost(&c->shm, size_now); }

void kv_client_close(struct kv_client *c)
{
    c->have_session = 0;
    c->frame_peeked = 0;
    c->frame.subscribed = c->cursor.subscribed = 0;
    c->frame.present = c->cursor.present = 0;
    kv_shm_unmap(&c->shm);
    c->hdr = NULL;
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

void kv_client_init(struct kv_client *c)
{
    __atomic_store_n(&c->hosttime, LOAD_SC(&c->hdr->timestamp), __ATOMIC_RELAXED);
    c->have_session = 0;
}

/* ---- session ---------------------------------------------------------------------------- */

/* No v6 magic at offset 0: look where LGMP v10 and v12 keep theirs, so a newer host is reported
 * as a version mismatch and not as "host not running" (spec 4.1-4.2, 9.3). */
static int probe_other_layouts(struct kv_client *c, struct kv_error *err)
{
    static const struct { uint32_t magic_off; uint32_t udata_off; } layouts[] = {
        { LGMP_V10_MAGIC_OFFSET, LGMP_V10_MAGIC_OFFSET + 20 },
        { LGMP_V12_MAGIC_OFFSET, LGMP_V12_MAGIC_OFFSET + 20 },
    };
    for (size_t i = 0; i < sizeof layouts / sizeof layouts[0]; ++i) {
        uint64_t off = layouts[i].magic_off;
        if (!in_shm(c, off, 8))
            continue;
        uint32_t magic = LOAD((uint32_t *)(c->shm.base + off));
        if (magic != LGMP_PROTOCOL_MAGIC)
            continue;
        uint32_t version = LOAD((uint32_t *)(c->shm.base + off + 4));
        uint32_t kvmfr = 0;
        uint64_t u = layouts[i].udata_off;
        if (in_shm(c, u, KVMFR_HEADER_SIZE) && memcmp(c->shm.base + u, "KVMFR---", 8) == 0)
            kvmfr = LOAD((uint32_t *)(c->shm.base + u + 8));
        return kv_fail(err, KV_ERR_OTHER_LGMP, "lgmp.version", version, kvmfr,
                       "host speaks LGMP %u / KVMFR %u; this client speaks %d / %d",
                       version, kvmfr, LGMP_PROTOCOL_VERSION, KVMFR_VERSION);
    }
    return kv_fail(err, LGMP_ERR_INVALID_MAGIC, "lgmp.magic", LOAD(&c->hdr->magic), LGMP_PROTOCOL_MAGIC,
                   "no LGMP header in the shared memory: the host application is not running");
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
    if (kh.version != KVMFR_VERSION)
        return kv_fail(err, KV_ERR_KVMFR_VERSION, "kvmfr.version", kh.version, KVMFR_VERSION,
                       "host speaks LGMP %d / KVMFR %u (host version \"%s\"); this client speaks %d / %d",
                       LGMP_PROTOCOL_VERSION, kh.version, kh.version >= 2 ? info->hostver : "?",
                       LGMP_PROTOCOL_VERSION, KVMFR_VERSION);
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

int kv_client_session_init(struct kv_client *c, struct kv_host_info *info, struct kv_error *err)
{
    struct lgmp_header *h = c->hdr;
    memset(info, 0, sizeof *info);
    c->have_session = 0;
    c->frame.present = c->cursor.present = 0;
    c->frame.subscribed = c->cursor.subscribed = 0;
    c->frame_peeked = 0;

    uint32_t magic = LOAD_SC(&h->magic);
    if (magic != LGMP_PROTOCOL_MAGIC)
        return probe_other_layouts(c, err);
    uint32_t version = LOAD(&h->version);
    info->lgmp_version = version;
    if (version != LGMP_PROTOCOL_VERSION)
        return kv_fail(err, LGMP_ERR_INVALID_VERSION, "lgmp.version", version, LGMP_PROTOCOL_VERSION,
                       "host speaks LGMP %u; this client speaks %d / %d", version, LGMP_PROTOCOL_VERSION,
                       KVMFR_VERSION);
    uint64_t ts = LOAD_SC(&h->timestamp);
    if (ts == __atomic_load_n(&c->hosttime, __ATOMIC_RELAXED))
        return kv_fail(err, LGMP_ERR_INVALID_SESSION, "lgmp.timestamp", ts, 0,
                       "the host's heartbeat is not moving: the host is not running (yet)");
    uint32_t session_id = LOAD(&h->sessionID);
    uint32_t num_queues = LOAD(&h->numQueues);
    if (num_queues > LGMP_MAX_QUEUES)
        return kv_fail(err, KV_ERR_BAD_FIELD, "lgmp.numQueues", num_queues, LGMP_MAX_QUEUES,
                       "header claims %u queues; LGMP 6 has at most %d", num_queues, LGMP_MAX_QUEUES);
    uint32_t udata_size = LOAD(&h->udataSize);
    uint64_t udata_room = c->shm.size - LGMP_UDATA_OFFSET;
    if (udata_size > MAX_UDATA || udata_size > udata_room)
        return kv_fail(err, KV_ERR_BAD_FIELD, "lgmp.udataSize", udata_size,
                       udata_room < MAX_UDATA ? udata_room : MAX_UDATA,
                       "user data size %u does not fit the shared memory", udata_size);
    memcpy(c->udata, c->shm.base + LGMP_UDATA_OFFSET, udata_size);
    info->session_id = session_id;
    info->udata_size = udata_size;
    int rc = parse_kvmfr(c, udata_size, info, err);
    if (rc)
        return rc;

    /* Queue table: find ours by id and validate what we will index with. */
    for (uint32_t i = 0; i < num_queues; ++i) {
        struct lgmp_header_queue *q = &h->queues[i];
        uint32_t id = LOAD(&q->queueID);
        struct kv_queue_state *qs = queue_by_id(c, id);
        if (!qs || qs->present)
            continue;
        uint32_t n = LOAD(&q->numMessages);
        uint32_t off = LOAD(&q->messagesOffset);
        char field[48];
        snprintf(field, sizeof field, "queue[%u].numMessages", id);
        if (n < 2 || n > MAX_RING)
            return kv_fail(err, KV_ERR_BAD_FIELD, field, n, MAX_RING,
                           "queue %u has %u ring slots (must be 2..%u)", id, n, MAX_RING);
        snprintf(field, sizeof field, "queue[%u].messagesOffset", id);
        if (off < LGMP_HEADER_SIZE || (off & 3) || !in_shm(c, off, (uint64_t)n * sizeof(struct lgmp_header_message)))
            return kv_fail(err, KV_ERR_BAD_FIELD, field, off, c->shm.size,
                           "queue %u's ring at %u (%u slots) is misaligned or outside the %llu-byte mapping",
                           id, off, n, (unsigned long long)c->shm.size);
        qs->present = 1;
        qs->index = i;
        qs->num_messages = n;
        qs->messages_offset = off;
    }

    while (!c->client_id) {
        if (getrandom(&c->client_id, sizeof c->client_id, 0) != sizeof c->client_id)
            c->client_id = (uint32_t)kv_now_ns() | 1u;
    }
    c->session_id = session_id;
    c->features = info->features;
    __atomic_store_n(&c->hosttime, ts, __ATOMIC_RELAXED);
    __atomic_store_n(&c->last_heartbeat_ns, kv_now_ns(), __ATOMIC_RELAXED);
    c->have_session = 1;
    return LGMP_OK;
}

int kv_client_session_valid(struct kv_client *c, struct kv_error *err)
{
    if (!c->have_session)
        return kv_fail(err, KV_ERR_NOT_READY, "", 0, 0, "no session");
    struct lgmp_header *h = c->hdr;
    if (LOAD(&h->magic) != LGMP_PROTOCOL_MAGIC)
        return kv_fail(err, KV_ERR_SESSION_LOST, "lgmp.magic", 3, 0, "the host's LGMP header disappeared");
    uint32_t sid = LOAD(&h->sessionID);
    if (sid != c->session_id)
        return kv_fail(err, KV_ERR_SESSION_LOST, "lgmp.sessionID", 1, 0,
                       "the host restarted (session %u replaced %u)", sid, c->session_id);
    uint64_t ts = LOAD_SC(&h->timestamp);
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
    if (!qs->present)
        return kv_fail(err, LGMP_ERR_NO_SUCH_QUEUE, "queueID", queue_id, 0, "the host has no queue %u", queue_id);
    struct lgmp_header_queue *q = queue_ptr(c, qs);
    struct lgmp_header_message *ring = ring_ptr(c, qs);
    int rc = lock_or_fail(&q->lock, "queue lock", err);
    if (rc)
        return rc;

    uint64_t subs = LOAD_SC(&q->subs);
    uint64_t host_now = LOAD_SC(&c->hdr->timestamp);
    if (SUBS_ON(subs)) {
        /* Reclaim slots that were kicked (BAD) longer than their timeout ago. */
        for (uint32_t i = 0; i < LGMP_MAX_SUBS; ++i) {
            if ((SUBS_BAD(subs) & (1u << i)) && host_now > LOAD(&q->timeout[i])) {
                subs &= ~(SUBS_BIT_ON(i) | SUBS_BIT_BAD(i));
                STORE(&q->timeout[i], 0);
                STORE(&q->clientID[i], 0);
            }
        }
    }
    uint32_t used = SUBS_ON(subs) | SUBS_BAD(subs);
    if (used == 0xffffffffu) {
        kv_unlock(&q->lock);
        return kv_fail(err, LGMP_ERR_QUEUE_FULL, "queue.subs", subs, LGMP_MAX_SUBS,
                       "all %d subscriber slots of queue %u are taken", LGMP_MAX_SUBS, queue_id);
    }
    /* Check the write position before taking a slot: a refusal must leave no ON bit or client id
     * behind, or every retry against a bad queue would leak another of the 32 slots. */
    uint32_t pos = LOAD_SC(&q->position);
    if (pos >= qs->num_messages) {
        kv_unlock(&q->lock);
        return kv_fail(err, KV_ERR_BAD_FIELD, "queue.position", pos, qs->num_messages,
                       "queue %u's write position %u is outside its %u-slot ring", queue_id, pos, qs->num_messages);
    }
    uint32_t slot = (uint32_t)__builtin_ctz(~used);
    STORE(&q->timeout[slot], 0);
    STORE(&q->clientID[slot], c->client_id);
    /* Don't inherit a previous owner's pending bits (the v6 race of spec 3.2 step 9). */
    for (uint32_t m = 0; m < qs->num_messages; ++m)
        FETCH_AND(&ring[m].pendingSubs, ~(1u << slot));
    subs |= SUBS_BIT_ON(slot);
    STORE_SC(&q->subs, subs);
    FETCH_ADD(&q->newSubCount, 1);
    kv_unlock(&q->lock);

    qs->slot = slot;
    qs->read_pos = pos;
    qs->subscribed = 1;
    return LGMP_OK;
}

int kv_client_unsubscribe(struct kv_client *c, uint32_t queue_id)
{
    struct kv_queue_state *qs = queue_by_id(c, queue_id);
    if (!qs || !qs->subscribed)
        return LGMP_OK;
    qs->subscribed = 0;
    if (queue_id == LGMP_Q_FRAME)
        c->frame_peeked = 0;
    /* After a host restart the slot bits belong to the new session: leave them alone. */
    if (LOAD(&c->hdr->sessionID) != c->session_id || LOAD(&c->hdr->magic) != LGMP_PROTOCOL_MAGIC)
        return LGMP_ERR_INVALID_SESSION;
    struct lgmp_header_queue *q = queue_ptr(c, qs);
    struct kv_error e;
    if (lock_or_fail(&q->lock, "queue lock", &e))
        return e.code;
    uint64_t subs = LOAD_SC(&q->subs);
    if (SUBS_BAD(subs) & (1u << qs->slot)) {
        kv_unlock(&q->lock);
        return LGMP_ERR_QUEUE_TIMEOUT;   /* the slot stays until a subscriber reclaims it */
    }
    subs &= ~(SUBS_BIT_ON(qs->slot) | SUBS_BIT_BAD(qs->slot));
    STORE_SC(&q->subs, subs);
    STORE(&q->timeout[qs->slot], 0);
    STORE(&q->clientID[qs->slot], 0);
    kv_unlock(&q->lock);
    return LGMP_OK;
}

/* The checks Peek and Done share: still subscribed, not kicked, and is there a message? */
static int queue_check(struct kv_client *c, struct kv_queue_state *qs, uint32_t *position, struct kv_error *err)
{
    if (!c->have_session || !qs->subscribed)
        return kv_fail(err, KV_ERR_NOT_READY, "", qs->queue_id, 0, "not subscribed to queue %u", qs->queue_id);
    struct lgmp_header_queue *q = queue_ptr(c, qs);
    uint64_t subs = LOAD_SC(&q->subs);
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
    uint32_t pos = LOAD_ACQ(&q->position);
    if (pos >= qs->num_messages)
        return kv_fail(err, KV_ERR_BAD_FIELD, "queue.position", pos, qs->num_messages,
                       "queue %u's write position %u is outside its %u-slot ring", qs->queue_id, pos, qs->num_messages);
    *position = pos;
    return pos == qs->read_pos ? LGMP_ERR_QUEUE_EMPTY : LGMP_OK;
}

/* Clear our pending bit on ring[read_pos]; if we were the last, try to dequeue it (spec 3.2 step 7). */
static int finish_message(struct kv_client *c, struct kv_queue_state *qs, struct kv_error *err)
{
    struct lgmp_header_queue *q = queue_ptr(c, qs);
    struct lgmp_header_message *msg = &ring_ptr(c, qs)[qs->read_pos];
    uint32_t bit = 1u << qs->slot;
    uint32_t prev = FETCH_AND(&msg->pendingSubs, ~bit);
    int rc = LGMP_OK;
    if ((prev & ~bit) == 0 && kv_try_lock(&q->lock)) {
        uint32_t start = LOAD(&q->start);
        if (start == qs->read_pos) {
            STORE(&q->start, (start + 1) % qs->num_messages);
            uint32_t count = FETCH_SUB(&q->count, 1);
            if (count == 0) {
                STORE_SC(&q->count, 0);
                rc = kv_fail(err, LGMP_ERR_CORRUPTED, "queue.count", 0, 0,
                             "queue %u's message count went below zero", qs->queue_id);
            } else {
                STORE_SC(&q->msgTimeout, LOAD_SC(&c->hdr->timestamp) + LOAD(&q->maxTime));
            }
        }
        kv_unlock(&q->lock);
    }
    qs->read_pos = (qs->read_pos + 1) % qs->num_messages;
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
        kv_sleep_us(poll_us);
    }
}

/* ---- frames ----------------------------------------------------------------------------- */

static int validate_frame(struct kv_client *c, const struct kvmfr_frame *f, uint32_t msg_off, uint32_t msg_size,
                          struct kv_frame_info *fi, struct kv_error *err)
{
    uint32_t bpp = kv_frame_bpp(f->type);
    if (f->type == FRAME_TYPE_INVALID || f->type >= FRAME_TYPE_MAX || !bpp)
        return kv_fail(err, KV_ERR_BAD_FIELD, "frame.type", f->type, FRAME_TYPE_MAX - 1,
                       "frame type %u is not a KVMFR 20 frame type", f->type);
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
    if (f->offset < sizeof(struct kvmfr_frame) || (f->offset & 3) || f->offset > msg_size - FB_WP_SIZE)
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
    c->fb_offset = (uint64_t)msg_off + f->offset;
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
    struct lgmp_header_message *m = &ring_ptr(c, qs)[qs->read_pos];
    uint32_t msg_off = LOAD(&m->offset);
    uint32_t msg_size = LOAD(&m->size);
    fi->t_seen_ns = kv_now_ns();
    /* The frame's write pointer (msg_off + frame.offset) is read with atomic loads, which must be
     * 4-byte aligned: both parts are checked for it (frame.offset in validate_frame). */
    if (msg_size < sizeof(struct kvmfr_frame) || msg_off < LGMP_HEADER_SIZE || (msg_off & 3) ||
        !in_shm(c, msg_off, msg_size)) {
        kv_fail(err, KV_ERR_BAD_FIELD, msg_size < sizeof(struct kvmfr_frame) ? "message.size" : "message.offset",
                msg_size < sizeof(struct kvmfr_frame) ? msg_size : msg_off, c->shm.size,
                "frame message (offset %u, size %u) is too small, misaligned or outside the %llu-byte mapping",
                msg_off, msg_size, (unsigned long long)c->shm.size);
        finish_message(c, qs, NULL);
        return err ? err->code : KV_ERR_BAD_FIELD;
    }
    struct kvmfr_frame f;
    memcpy(&f, c->shm.base + msg_off, sizeof f);   /* one copy; only the copy is checked and used */
    rc = validate_frame(c, &f, msg_off, msg_size, fi, err);
    if (rc) {
        finish_message(c, qs, NULL);   /* skip the bad frame so the host does not drop us */
        return rc;
    }
    c->peeked = *fi;
    c->frame_peeked = 1;
    return LGMP_OK;
}

/* Wait until the producer's write pointer covers `need` bytes. Only forward progress counts, and the
 * whole frame has a deadline, so a write pointer that flickers or crawls cannot hold us forever. */
static int wait_wp(struct kv_client *c, const uint32_t *wp, uint64_t need, uint32_t *seen, uint64_t deadline,
                   struct kv_error *err)
{
    if (*seen >= need)
        return LGMP_OK;
    uint64_t last_progress = kv_now_ns();
    for (unsigned spins = 0;; ++spins) {
        uint32_t v = LOAD_ACQ(wp);
        if (v >= need) {
            *seen = v;
            return LGMP_OK;
        }
        uint64_t now = kv_now_ns();
        if (v > *seen) {
            *seen = v;
            last_progress = now;
        } else if (now - last_progress > WP_STALL_NS || now > deadline) {
            return kv_fail(err, KV_ERR_WP_STALL, "framebuffer.wp", v, need,
                           "the host stopped writing the frame at byte %u of %llu", v, (unsigned long long)need);
        }
        if (spins < 64)
            __builtin_ia32_pause();
        else
            kv_sleep_us(spins < 256 ? 5 : 50);
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
    uint32_t seen = 0;
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
                rc = wait_wp(c, wp, (uint64_t)y * p->pitch + x1, &seen, deadline, err);
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
            rc = wait_wp(c, wp, copied + n, &seen, deadline, err);
            if (rc)
                break;
            /* Take whatever is already published, not just one chunk. */
            uint64_t avail = seen > copied + n ? (seen < total ? seen : total) - copied : n;
            memcpy(dst + copied, src + copied, avail);
            copied += avail;
        }
    } else {
        for (uint32_t y = 0; y < p->data_height; ++y) {
            uint64_t row = (uint64_t)y * p->pitch;
            rc = wait_wp(c, wp, row + row_len, &seen, deadline, err);
            if (rc)
                break;
            memcpy(dst + (uint64_t)y * dst_pitch, src + row, row_len);
            copied += row_len;
        }
    }
    fi->t_copy_end_ns = kv_now_ns();
    fi->bytes_copied = copied;
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
    while ((qs->read_pos + 1) % qs->num_messages != pos) {
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
    struct lgmp_header_message *m = &ring_ptr(c, qs)[qs->read_pos];
    uint32_t flags = LOAD(&m->udata);
    uint32_t msg_off = LOAD(&m->offset);
    uint32_t msg_size = LOAD(&m->size);
    ci->t_seen_ns = kv_now_ns();
    if (msg_size < sizeof(struct kvmfr_cursor) || msg_off < LGMP_HEADER_SIZE || !in_shm(c, msg_off, msg_size)) {
        kv_fail(err, KV_ERR_BAD_FIELD, msg_size < sizeof(struct kvmfr_cursor) ? "message.size" : "message.offset",
                msg_size < sizeof(struct kvmfr_cursor) ? msg_size : msg_off, c->shm.size,
                "cursor message (offset %u, size %u) is too small or outside the %llu-byte mapping",
                msg_off, msg_size, (unsigned long long)c->shm.size);
        finish_message(c, qs, NULL);
        return err ? err->code : KV_ERR_BAD_FIELD;
    }
    struct kvmfr_cursor cur;
    memcpy(&cur, c->shm.base + msg_off, sizeof cur);
    ci->flags = flags;
    ci->x = cur.x;
    ci->y = cur.y;
    if (flags & CURSOR_FLAG_SHAPE) {
        const char *field = NULL;
        uint64_t value = 0, limit = 0;
        uint64_t min_pitch = cur.type == CURSOR_TYPE_MONOCHROME ? (cur.width + 7) / 8 : (uint64_t)cur.width * 4;
        uint32_t max_h = cur.type == CURSOR_TYPE_MONOCHROME ? 2 * KVMFR_CURSOR_MAX_DIM : KVMFR_CURSOR_MAX_DIM;
        uint64_t bytes = (uint64_t)cur.height * cur.pitch;
        if (cur.type > CURSOR_TYPE_MASKED_COLOR)
            field = "cursor.type", value = cur.type, limit = CURSOR_TYPE_MASKED_COLOR;
        else if (cur.width > KVMFR_CURSOR_MAX_DIM)
            field = "cursor.width", value = cur.width, limit = KVMFR_CURSOR_MAX_DIM;
        else if (cur.height > max_h || (cur.type == CURSOR_TYPE_MONOCHROME && (cur.height & 1)))
            field = "cursor.height", value = cur.height, limit = max_h;
        else if (cur.pitch < min_pitch || cur.pitch > MAX_CURSOR_PITCH)
            field = "cursor.pitch", value = cur.pitch, limit = min_pitch;
        else if (bytes > msg_size - sizeof(struct kvmfr_cursor))
            field = "cursor.height", value = cur.height, limit = (msg_size - sizeof(struct kvmfr_cursor)) / cur.pitch;
        if (field) {
            kv_fail(err, KV_ERR_BAD_FIELD, field, value, limit,
                    "cursor shape %ux%u (type %u, pitch %u) is invalid or does not fit its %u-byte message",
                    cur.width, cur.height, cur.type, cur.pitch, msg_size);
            finish_message(c, qs, NULL);
            return KV_ERR_BAD_FIELD;
        }
        if (bytes > shape_size) {
            kv_fail(err, KV_ERR_DST_TOO_SMALL, "shape", shape_size, bytes, "shape buffer too small");
            finish_message(c, qs, NULL);
            return KV_ERR_DST_TOO_SMALL;
        }
        memcpy(shape, c->shm.base + msg_off + sizeof(struct kvmfr_cursor), bytes);
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
    struct lgmp_header_queue *q = queue_ptr(c, qs);
    if (SUBS_BAD(LOAD_SC(&q->subs)) & (1u << qs->slot))
        return kv_fail(err, LGMP_ERR_QUEUE_TIMEOUT, "queue.subs", 0, 0, "the host dropped us from the pointer queue");
    if (LOAD_SC(&q->cMsgAvail) == 0)
        return kv_fail(err, LGMP_ERR_QUEUE_FULL, "queue.cMsgAvail", 0, LGMP_MSGS_MAX, "the host's message ring is full");
    int rc = lock_or_fail(&q->cMsgLock, "client message lock", err);
    if (rc)
        return rc;
    uint32_t avail = LOAD_SC(&q->cMsgAvail);
    uint32_t wpos = LOAD_SC(&q->cMsgWPos);
    if (avail == 0 || avail > LGMP_MSGS_MAX || wpos >= LGMP_MSGS_MAX) {
        kv_unlock(&q->cMsgLock);
        if (avail == 0)
            return kv_fail(err, LGMP_ERR_QUEUE_FULL, "queue.cMsgAvail", 0, LGMP_MSGS_MAX, "the host's message ring is full");
        return kv_fail(err, KV_ERR_BAD_FIELD, avail > LGMP_MSGS_MAX ? "queue.cMsgAvail" : "queue.cMsgWPos",
                       avail > LGMP_MSGS_MAX ? avail : wpos, LGMP_MSGS_MAX, "client message ring state is corrupt");
    }
    struct lgmp_client_message *m = &q->cMsgs[wpos];
    STORE(&m->size, size);
    memcpy(m->data, data, size);
    STORE_SC(&q->cMsgWPos, (wpos + 1) % LGMP_MSGS_MAX);
    FETCH_SUB(&q->cMsgAvail, 1);
    uint32_t w = FETCH_ADD(&q->cMsgWSerial, 1);
    kv_unlock(&q->cMsgLock);
    *serial = w + 1;
    return LGMP_OK;
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
    struct lgmp_header_queue *q = queue_ptr(c, &c->cursor);
    uint64_t deadline = kv_now_ns() + (uint64_t)timeout_ms * 1000000ull;
    while ((int32_t)(LOAD_SC(&q->cMsgRSerial) - serial) < 0) {
        if (kv_now_ns() > deadline)
            return kv_fail(err, KV_ERR_TIMEOUT, "queue.cMsgRSerial", LOAD(&q->cMsgRSerial), serial,
                           "the host did not acknowledge the cursor move within %u ms", timeout_ms);
        kv_sleep_us(1000);
    }
    return LGMP_OK;
}

int kv_client_set_window_size(struct kv_client *c, uint32_t w, uint32_t h, struct kv_error *err)
{
    if (!(c->features & KVMFR_FEATURE_WINDOWSIZE))
        return kv_fail(err, KV_ERR_NOT_READY, "kvmfr.features", c->features, KVMFR_FEATURE_WINDOWSIZE,
                       "the host cannot resize the guest display (no WINDOWSIZE feature)");
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
    struct lgmp_header_queue *q = queue_ptr(c, qs);
    st->position = LOAD(&q->position);
    st->start = LOAD(&q->start);
    st->count = LOAD(&q->count);
    st->num_messages = qs->num_messages;
    st->subs = LOAD(&q->subs);
    st->new_sub_count = LOAD(&q->newSubCount);
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
    if (queue_id == LGMP_Q_FRAME)
        c->frame_peeked = 0;
    return LGMP_OK;
}
