/* LGMP 6 / KVMFR 20 producer (the "host application" side): spec sections 3.1, 5.4-5.7 and 9.2.
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

/* Clients write to the queue words we share with them, and a hostile or broken guest can write
 * anything anywhere. Nothing the producer waits for is unbounded: a lock is given up after
 * SHARED_LOCK_TIMEOUT_US, a full queue after the caller's timeout, and a subscriber that never
 * finishes is kicked after KVMFR_SUB_TIMEOUT_MS by our own clock (not the shared maxTime).
 * A region whose words contradict what we wrote (magic, session id, queue table, a count that
 * does not match start..position, a lock that is never released) is re-initialised with a new
 * session id, exactly like a host restart, which every client already handles. */

struct prod_queue {
    uint32_t index;
    uint32_t num_messages;
    uint32_t write_index;        /* producer-private write position */
    uint64_t bad_since[LGMP_MAX_SUBS];   /* our clock (ms) when we first saw a slot kicked (BAD); 0: not */
    struct lgmp_header_queue *q;
    struct lgmp_header_message *ring;
};

struct frame_slot {
    uint32_t offset;             /* SHM offset of the block (KVMFRFrame at its start) */
    int      damage_full;        /* every byte must be rewritten next time */
    uint32_t damage_count;
    struct kvmfr_damage_rect damage[KVMFR_MAX_DAMAGE_RECTS];
};

struct kv_producer {
    struct kv_shm shm;
    struct lgmp_header *hdr;
    int      started;
    uint32_t session_id;
    uint32_t page;
    uint32_t alloc_next;
    struct prod_queue fq, pq;

    uint32_t cursor_small[KVMFR_CURSOR_SMALL_BLOCKS];
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
    p->hdr = (struct lgmp_header *)p->shm.base;
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

static int create_queue(struct kv_producer *p, struct prod_queue *pq, uint32_t index, uint32_t queue_id,
                        uint32_t length, struct kv_error *err)
{
    struct lgmp_header *h = p->hdr;   /* the index is ours: numQueues is guest-writable */
    struct lgmp_header_queue *q = &h->queues[index];
    uint32_t n = length + 1;   /* one sentinel slot */
    uint32_t off;
    int rc = alloc(p, 16 * n, 4, &off, err);
    if (rc)
        return rc;
    q->queueID = queue_id;
    q->numMessages = n;
    q->newSubCount = 0;
    q->lock = 0;
    q->subs = 0;
    q->position = 0;
    q->start = 0;
    q->msgTimeout = 0;
    q->maxTime = KVMFR_SUB_TIMEOUT_MS;
    q->count = 0;
    q->cMsgLock = 0;
    q->cMsgAvail = LGMP_MSGS_MAX;
    q->cMsgWPos = 0;
    q->cMsgWSerial = 0;
    q->cMsgRSerial = 0;
    q->messagesOffset = off;
    /* Hygiene the B7 host skips (spec 9.2 step 3): no stale ring entries, ids or messages. */
    memset(q->timeout, 0, sizeof q->timeout);
    memset(q->clientID, 0, sizeof q->clientID);
    memset(q->cMsgs, 0, sizeof q->cMsgs);
    memset(p->shm.base + off, 0, 16 * n);
    STORE(&h->numQueues, index + 1);
    pq->index = index;
    pq->num_messages = n;
    pq->write_index = 0;
    memset(pq->bad_since, 0, sizeof pq->bad_since);
    pq->q = q;
    pq->ring = (struct lgmp_header_message *)(p->shm.base + off);
    return LGMP_OK;
}

static uint32_t build_udata(const struct kv_host_info *host, uint8_t *u, uint32_t room)
{
    struct kvmfr_header kh;
    memset(&kh, 0, sizeof kh);
    memcpy(kh.magic, "KVMFR---", 8);
    kh.version = KVMFR_VERSION;
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
    struct lgmp_header *h = p->hdr;
    uint8_t *udata = p->udata;
    uint32_t udata_size = build_udata(&p->host, udata, UDATA_MAX);
    if ((uint64_t)LGMP_HEADER_SIZE + udata_size > p->shm.size)
        return kv_fail(err, KV_ERR_SHM_TOO_SMALL, "shm.size", p->shm.size, LGMP_HEADER_SIZE + udata_size,
                       "shared memory too small for the LGMP header");
    p->udata_size = udata_size;
    /* Invalidate any previous session first; the magic goes back last, once all is in place. */
    uint32_t old = LOAD(&h->sessionID);
    STORE_SC(&h->magic, 0);
    uint32_t sid = 0;
    while (sid == 0 || sid == old || sid == p->session_id) {
        if (getrandom(&sid, sizeof sid, 0) != sizeof sid)
            sid = (uint32_t)kv_now_ns();
    }
    p->session_id = sid;
    STORE(&h->sessionID, sid);
    STORE_SC(&h->timestamp, kv_now_ms());
    STORE(&h->version, LGMP_PROTOCOL_VERSION);
    STORE(&h->numQueues, 0);
    STORE(&h->udataSize, udata_size);
    memcpy(p->shm.base + LGMP_UDATA_OFFSET, udata, udata_size);

    /* Allocation order of the B7 host (spec 5.6). */
    p->alloc_next = align_up(LGMP_HEADER_SIZE + udata_size, 4);
    int rc = create_queue(p, &p->fq, 0, LGMP_Q_FRAME, LGMP_Q_FRAME_LEN, err);
    if (!rc)
        rc = create_queue(p, &p->pq, 1, LGMP_Q_POINTER, LGMP_Q_POINTER_LEN, err);
    for (uint32_t i = 0; !rc && i < KVMFR_CURSOR_SMALL_BLOCKS; ++i)
        rc = alloc(p, sizeof(struct kvmfr_cursor), 4, &p->cursor_small[i], err);
    for (uint32_t i = 0; !rc && i < KVMFR_CURSOR_SHAPE_BLOCKS; ++i)
        rc = alloc(p, sizeof(struct kvmfr_cursor) + KVMFR_CURSOR_SHAPE_MAX, 4, &p->cursor_shape[i], err);
    if (!rc) {
        uint64_t remaining = p->shm.size - p->alloc_next;
        uint64_t max_frame = remaining > p->page ? ((remaining - (p->page - 1)) & ~((uint64_t)p->page - 1)) / 2 : 0;
        uint32_t block = align_up((uint32_t)max_frame, p->page);
        if (max_frame <= 2 * (uint64_t)p->page)
            rc = kv_fail(err, KV_ERR_SHM_TOO_SMALL, "shm.size", p->shm.size, p->alloc_next + 4ull * p->page,
                         "shared memory too small: no room left for frame buffers");
        for (int i = 0; !rc && i < 2; ++i) {
            rc = alloc(p, block, p->page, &p->slots[i].offset, err);
            if (!rc) {
                struct kvmfr_frame *f = (struct kvmfr_frame *)(p->shm.base + p->slots[i].offset);
                memset(f, 0, sizeof *f);
                f->offset = p->page - FB_WP_SIZE;
                STORE_SC((uint32_t *)((uint8_t *)f + f->offset), 0);
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
    STORE_SC(&h->magic, LGMP_PROTOCOL_MAGIC);
    p->started = 1;
    return LGMP_OK;
}

int kv_producer_start(struct kv_producer *p, const struct kv_host_info *host, struct kv_error *err)
{
    if (!p->hdr)
        return kv_fail(err, KV_ERR_NOT_READY, "", 0, 0, "open the shared memory first");
    pthread_mutex_lock(&p->mu);
    p->host = *host;
    int rc = start_locked(p, 0, err);
    pthread_mutex_unlock(&p->mu);
    return rc;
}

/* Do the queue words still say what we wrote? (caller holds p->mu) */
static int queue_consistent(struct kv_producer *p, struct prod_queue *pq, uint32_t queue_id)
{
    struct lgmp_header_queue *q = pq->q;
    uint32_t v;
    if ((v = LOAD(&q->queueID)) != queue_id || (v = LOAD(&q->numMessages)) != pq->num_messages ||
        (v = LOAD(&q->messagesOffset)) != (uint32_t)((uint8_t *)pq->ring - p->shm.base)) {
        mark_corrupt(p, "queue %u's description in the queue table was overwritten", queue_id);
        return 0;
    }
    if ((v = LOAD(&q->position)) != pq->write_index) {
        mark_corrupt(p, "queue %u's write position was overwritten (%u, we wrote %u)", queue_id, v, pq->write_index);
        return 0;
    }
    if ((v = LOAD(&q->cMsgAvail)) > LGMP_MSGS_MAX || LOAD(&q->cMsgWPos) >= LGMP_MSGS_MAX) {
        mark_corrupt(p, "queue %u's client message ring state was overwritten", queue_id);
        return 0;
    }
    return 1;
}

/* Is the region still the session we wrote? Marks it corrupt when not. (caller holds p->mu) */
static int region_consistent(struct kv_producer *p)
{
    struct lgmp_header *h = p->hdr;
    if (__atomic_load_n(&p->corrupt, __ATOMIC_SEQ_CST))
        return 0;
    if (LOAD_SC(&h->magic) != LGMP_PROTOCOL_MAGIC || LOAD(&h->version) != LGMP_PROTOCOL_VERSION ||
        LOAD(&h->sessionID) != p->session_id) {
        mark_corrupt(p, "the LGMP header (magic, version or session id) was overwritten");
        return 0;
    }
    if (LOAD(&h->numQueues) != 2 || LOAD(&h->udataSize) != p->udata_size ||
        memcmp(p->shm.base + LGMP_UDATA_OFFSET, p->udata, p->udata_size) != 0) {
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
        STORE_SC(&p->hdr->magic, 0);   /* clients see the session end at once */
    p->started = 0;
    pthread_mutex_unlock(&p->mu);
}

/* ---- posting ---------------------------------------------------------------------------- */

/* Post one message (spec 3.1 step 4). Caller holds p->mu. */
static int post(struct kv_producer *p, struct prod_queue *pq, uint32_t udata, uint32_t size, uint32_t offset)
{
    struct lgmp_header_queue *q = pq->q;
    if (!kv_lock(&q->lock, SHARED_LOCK_TIMEOUT_US)) {
        mark_corrupt(p, "queue %u's lock word stayed taken for over %u ms (value %u)", LOAD(&q->queueID),
                     SHARED_LOCK_TIMEOUT_US / 1000, LOAD(&q->lock));
        return LGMP_ERR_CORRUPTED;
    }
    uint64_t subs = LOAD_SC(&q->subs);
    uint32_t pend = SUBS_ON(subs) & ~SUBS_BAD(subs);
    if (pend == 0) {
        kv_unlock(&q->lock);
        return LGMP_OK;   /* nobody listening: dropped, as the B7 host does */
    }
    uint32_t count = LOAD_SC(&q->count);
    if (count > pq->num_messages - 1) {
        kv_unlock(&q->lock);
        mark_corrupt(p, "queue %u's message count was overwritten (%u)", LOAD(&q->queueID), count);
        return LGMP_ERR_CORRUPTED;
    }
    if (count == pq->num_messages - 1) {
        kv_unlock(&q->lock);
        return LGMP_ERR_QUEUE_FULL;
    }
    struct lgmp_header_message *m = &pq->ring[pq->write_index];
    STORE(&m->udata, udata);
    STORE(&m->size, size);
    STORE(&m->offset, offset);
    STORE_SC(&m->pendingSubs, pend);
    if (FETCH_ADD(&q->count, 1) == 0)
        STORE_SC(&q->msgTimeout, kv_now_ms() + KVMFR_SUB_TIMEOUT_MS);
    pq->write_index = (pq->write_index + 1) % pq->num_messages;
    STORE_SC(&q->position, pq->write_index);
    kv_unlock(&q->lock);
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
            return kv_fail(err, LGMP_ERR_QUEUE_FULL, "queue.count", pq->num_messages - 1, pq->num_messages - 1,
                           "queue %u stayed full for %u ms", LOAD(&pq->q->queueID), timeout_ms);
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
static uint64_t free_dead_slots(struct prod_queue *pq, struct lgmp_header_queue *q, uint64_t subs, uint64_t now)
{
    for (uint32_t i = 0; i < LGMP_MAX_SUBS; ++i) {
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
            STORE(&q->timeout[i], 0);
            STORE(&q->clientID[i], 0);
            /* The next owner must not inherit this one's pending bits (a B7 client does not clear them). */
            for (uint32_t m = 0; m < pq->num_messages; ++m)
                FETCH_AND(&pq->ring[m].pendingSubs, ~bit);
            pq->bad_since[i] = 0;
        }
    }
    return subs;
}

static void gc_queue(struct kv_producer *p, struct prod_queue *pq, uint64_t now)
{
    struct lgmp_header_queue *q = pq->q;
    uint32_t n = pq->num_messages;
    if (!kv_lock(&q->lock, SHARED_LOCK_TIMEOUT_US)) {
        mark_corrupt(p, "queue %u's lock word stayed taken for over %u ms (value %u)", LOAD(&q->queueID),
                     SHARED_LOCK_TIMEOUT_US / 1000, LOAD(&q->lock));
        return;
    }
    /* Under the lock, start and count move together (clients dequeue under it too): the messages
     * from start to our write position are exactly count. Anything else was written by someone else. */
    uint32_t count = LOAD_SC(&q->count);
    uint32_t start = LOAD(&q->start);
    if (count > n - 1 || start >= n || (pq->write_index + n - start) % n != count) {
        kv_unlock(&q->lock);
        mark_corrupt(p, "queue %u's start/count (%u/%u) do not match its %u messages", LOAD(&q->queueID), start,
                     count, (pq->write_index + n - (start < n ? start : 0)) % n);
        return;
    }
    uint64_t subs = free_dead_slots(pq, q, LOAD_SC(&q->subs), now);
    if (count == 0) {
        STORE_SC(&q->subs, subs);
        kv_unlock(&q->lock);
        return;
    }
    /* msgTimeout is shared too: a deadline further out than one subscriber timeout is not ours. */
    uint64_t msg_timeout = LOAD_SC(&q->msgTimeout);
    if (msg_timeout > now + KVMFR_SUB_TIMEOUT_MS) {
        msg_timeout = now + KVMFR_SUB_TIMEOUT_MS;
        STORE_SC(&q->msgTimeout, msg_timeout);
    }
    for (uint32_t walked = 0; walked < n && count > 0; ++walked) {
        struct lgmp_header_message *m = &pq->ring[start];
        uint32_t pend = LOAD_SC(&m->pendingSubs) & SUBS_ON(subs);
        uint32_t new_bad = pend & ~SUBS_BAD(subs);
        if (new_bad && now > msg_timeout) {
            /* These subscribers missed the deadline: mark them bad and release the message. */
            subs |= new_bad;
            for (uint32_t i = 0; i < LGMP_MAX_SUBS; ++i)
                if (new_bad & (1u << i)) {
                    STORE(&q->timeout[i], now + KVMFR_SUB_TIMEOUT_MS);
                    pq->bad_since[i] = now;
                }
            STORE_SC(&m->pendingSubs, 0);
            pend = 0;
        }
        if (pend & ~SUBS_BAD(subs))
            break;
        start = (start + 1) % n;
        STORE(&q->start, start);
        count = FETCH_SUB(&q->count, 1) - 1;
        msg_timeout = now + KVMFR_SUB_TIMEOUT_MS;
        STORE_SC(&q->msgTimeout, msg_timeout);
    }
    STORE_SC(&q->subs, subs);
    kv_unlock(&q->lock);
}

static void drain_client_messages(struct kv_producer *p)
{
    struct lgmp_header_queue *q = p->pq.q;
    /* At most one ring's worth a tick, whatever cMsgAvail says. */
    for (uint32_t i = 0; i < LGMP_MSGS_MAX && LOAD_SC(&q->cMsgAvail) < LGMP_MSGS_MAX &&
                         p->msg_head - p->msg_tail < MSG_RING; ++i) {
        if (!kv_lock(&q->cMsgLock, SHARED_LOCK_TIMEOUT_US)) {
            mark_corrupt(p, "the client message lock word stayed taken for over %u ms (value %u)",
                         SHARED_LOCK_TIMEOUT_US / 1000, LOAD(&q->cMsgLock));
            return;
        }
        struct lgmp_client_message *m = &q->cMsgs[p->cmsg_read];
        uint32_t size = LOAD(&m->size);
        if (size > LGMP_MSGS_SIZE)
            size = LGMP_MSGS_SIZE;   /* a client's bad size cannot make us read past the slot */
        uint32_t slot = p->msg_head % MSG_RING;
        memcpy(p->msgs[slot], m->data, size);
        p->msg_sizes[slot] = size;
        p->msg_head++;
        p->cmsg_read = (p->cmsg_read + 1) % LGMP_MSGS_MAX;
        FETCH_ADD(&q->cMsgAvail, 1);
        kv_unlock(&q->cMsgLock);
    }
}

static void repost_to_new_subscribers(struct kv_producer *p)
{
    if (EXCHANGE(&p->pq.q->newSubCount, 0) && p->have_shape) {
        /* As B7: the newest shape block already holds type and shape; x/y are current. */
        uint32_t flags = CURSOR_FLAG_POSITION | CURSOR_FLAG_SHAPE | (p->cursor_visible ? CURSOR_FLAG_VISIBLE : 0);
        post(p, &p->pq, flags, sizeof(struct kvmfr_cursor) + KVMFR_CURSOR_SHAPE_MAX, p->last_shape_block);
    }
    if (EXCHANGE(&p->fq.q->newSubCount, 0) && p->last_posted_slot >= 0) {
        if (post(p, &p->fq, 0, p->frame_block_size, p->slots[p->last_posted_slot].offset) == LGMP_ERR_QUEUE_FULL)
            FETCH_ADD(&p->fq.q->newSubCount, 1);   /* try again next tick */
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
    STORE_SC(&p->hdr->timestamp, now);
    gc_queue(p, &p->fq, now);
    gc_queue(p, &p->pq, now);
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
    uint64_t subs = LOAD_SC(&pq->q->subs);
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
    FETCH_ADD(&p->pq.q->cMsgRSerial, 1);   /* handled: acknowledge (spec 3.1 step 5) */
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

int kv_producer_frame_begin(struct kv_producer *p, const struct kv_frame_info *fi, uint32_t timeout_ms,
                            struct kv_error *err)
{
    if (!p->started)
        return kv_fail(err, KV_ERR_NOT_READY, "", 0, 0, "producer not started");
    uint32_t bpp = kv_frame_bpp(fi->type);
    uint64_t row = kv_row_bytes(fi->type, fi->data_width);
    if (!bpp || fi->pitch < row || fi->data_height == 0 || fi->damage_count > KVMFR_MAX_DAMAGE_RECTS)
        return kv_fail(err, LGMP_ERR_INVALID_ARGUMENT, "frame", fi->type, 0, "invalid frame description");
    /* Backpressure: at most LGMP_Q_FRAME_LEN frames pending (spec 3.3, 5.6). */
    uint64_t deadline = kv_now_ns() + (uint64_t)timeout_ms * 1000000ull;
    for (;;) {
        uint32_t count = LOAD_SC(&p->fq.q->count);
        if (count < LGMP_Q_FRAME_LEN)
            break;
        if (count > p->fq.num_messages - 1) {
            mark_corrupt(p, "the frame queue's message count was overwritten (%u)", count);
            break;   /* healed below */
        }
        if (kv_now_ns() > deadline)
            return kv_fail(err, KV_ERR_TIMEOUT, "queue.count", LGMP_Q_FRAME_LEN, LGMP_Q_FRAME_LEN,
                           "clients did not finish frames within %u ms", timeout_ms);
        kv_sleep_us(100);
    }
    pthread_mutex_lock(&p->mu);
    heal_locked(p);
    int slot = (int)p->frame_next;
    p->frame_next ^= 1;
    struct frame_slot *s = &p->slots[slot];
    struct kvmfr_frame *f = (struct kvmfr_frame *)(p->shm.base + s->offset);
    uint32_t *wp = (uint32_t *)((uint8_t *)f + (p->page - FB_WP_SIZE));
    uint64_t room = p->frame_block_size - p->page;
    struct kv_frame_info cur = *fi;
    if ((uint64_t)cur.data_height * cur.pitch > room) {
        cur.data_height = (uint32_t)(room / cur.pitch);   /* shared memory too small: send what fits */
        cur.flags |= FRAME_FLAG_TRUNCATED;
    }
    cur.bytes_per_pixel = bpp;
    cur.data_size = (uint64_t)cur.data_height * cur.pitch;
    kv_frame_info_to_wire(f, &cur);
    f->offset = p->page - FB_WP_SIZE;
    STORE_REL(wp, 0);
    for (int i = 0; i < 2; ++i)
        slot_add_damage(&p->slots[i], &cur);
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
    if (src_pitch == pitch) {
        /* One contiguous run: copy and publish a chunk at a time (spec 5.4, FB_CHUNK_SIZE). */
        while (at < end) {
            uint64_t n = end - at < FB_CHUNK_SIZE ? end - at : FB_CHUNK_SIZE;
            memcpy(dst + at, src + (at - (uint64_t)row0 * pitch), n);
            at += n;
            STORE_REL(wp, (uint32_t)at);
        }
    } else {
        for (uint32_t r = 0; r < rows; ++r) {
            memcpy(dst + at, src + (uint64_t)r * src_pitch, pitch);
            at += pitch;
            if (at - published >= FB_CHUNK_SIZE || r + 1 == rows) {
                STORE_REL(wp, (uint32_t)at);
                published = at;
            }
        }
    }
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
        STORE_REL(cur_wp_ptr(p), (uint32_t)f->data_size);
        p->cur_wp = (uint32_t)f->data_size;
    }
    s->damage_full = 0;
    s->damage_count = 0;
    return LGMP_OK;
}

int kv_producer_frame_end(struct kv_producer *p)
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
    STORE_REL(cur_wp_ptr(p), (uint32_t)p->cur.data_size);
    p->cur_slot = -1;
    return LGMP_OK;
}

/* ---- cursor ----------------------------------------------------------------------------- */

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
        size = sizeof(struct kvmfr_cursor) + KVMFR_CURSOR_SHAPE_MAX;
        struct kvmfr_cursor *c = (struct kvmfr_cursor *)(p->shm.base + block);
        c->x = (int16_t)ci->x;
        c->y = (int16_t)ci->y;
        c->type = ci->type;
        c->hx = (int8_t)ci->hx;
        c->hy = (int8_t)ci->hy;
        c->width = ci->width;
        c->height = ci->height;
        c->pitch = ci->pitch;
        memcpy((uint8_t *)c + sizeof *c, shape, bytes);
        p->last_shape_block = block;
        p->have_shape = 1;
    } else {
        block = p->cursor_small[p->small_next];
        p->small_next = (p->small_next + 1) % KVMFR_CURSOR_SMALL_BLOCKS;
        size = sizeof(struct kvmfr_cursor);
        struct kvmfr_cursor *c = (struct kvmfr_cursor *)(p->shm.base + block);
        memset(c, 0, sizeof *c);
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
    return post_wait(p, &p->pq, ci->flags, size, block, timeout_ms, err);
}

int kv_producer_queue_stats(struct kv_producer *p, uint32_t queue_id, struct kv_queue_stats *st)
{
    memset(st, 0, sizeof *st);
    st->slot = 0xffffffffu;
    if (!p->started)
        return KV_ERR_NOT_READY;
    struct prod_queue *pq = queue_id == LGMP_Q_FRAME ? &p->fq : &p->pq;
    st->position = LOAD(&pq->q->position);
    st->start = LOAD(&pq->q->start);
    st->count = LOAD(&pq->q->count);
    st->num_messages = pq->num_messages;
    st->subs = LOAD(&pq->q->subs);
    st->new_sub_count = LOAD(&pq->q->newSubCount);
    return LGMP_OK;
}
