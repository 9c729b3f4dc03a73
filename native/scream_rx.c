/* Scream UDP receive path (see scream_rx.h): the per-datagram work that Python did at ~10 us a
 * datagram and one thread wake per datagram, here with the GIL released and recvmmsg batches.
 *
 * Anyone on the network can send to the port, so nothing in a datagram is trusted: every datagram is
 * read into a buffer of max_packet + 1 bytes (a longer one arrives truncated and is refused by its
 * length), its header is copied out and compared, and only the payload of an accepted datagram from
 * the owning sender is copied into the caller's block, after checking that it fits. No allocation
 * after scream_rx_new.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "scream_rx.h"

#define BATCH 64      /* datagrams per recvmmsg */
#define REFUSED 8     /* refused headers remembered (round robin) */

_Static_assert(sizeof(((struct scream_rx_block *)0)->chunk_end) / sizeof(uint32_t) == SCREAM_RX_MAX_CHUNKS,
               "chunk_end size");
_Static_assert(sizeof(((struct scream_rx_block *)0)->chunk_arrived_ns) / sizeof(uint64_t) == SCREAM_RX_MAX_CHUNKS,
               "chunk_arrived_ns size");
_Static_assert(sizeof(((struct scream_rx_block *)0)->header) == SCREAM_RX_HEADER_MAX, "header size");

struct scream_rx {
    uint32_t header_size, max_packet, slot;     /* slot = max_packet + 1 */
    uint64_t sender_timeout_ns;

    int      have_format;
    uint8_t  header[SCREAM_RX_HEADER_MAX];
    uint32_t frame_bytes;

    uint8_t  refused[REFUSED][SCREAM_RX_HEADER_MAX];
    uint32_t refused_count, refused_next;

    /* Python's time is bounded: a sender cycling through more bad headers than `refused` holds would
     * otherwise cost one Python call a datagram. Only while nobody owns the stream (an owner's foreign
     * senders are dropped before their header is read), and a legitimate new header still gets asked
     * about within a second or so of the flood's share. */
    uint64_t ask_window_ns;
    uint32_t asked;

    int      have_sender;
    uint32_t sender_ip, sender_port;
    uint64_t sender_seen_ns;

    /* the datagram whose header Python is checking (status SCREAM_RX_HEADER) */
    int      pending;
    uint8_t *pending_data;
    uint32_t pending_len, pending_ip, pending_port;
    int      pending_check_sender;
    uint64_t pending_ns;

    /* a recvmmsg batch not yet handled (a new header stopped it, or the block filled) */
    uint32_t batch_next, batch_count;
    uint64_t batch_ns;
    struct mmsghdr msgs[BATCH];
    struct iovec iov[BATCH];
    struct sockaddr_in addr[BATCH];
    uint8_t *bufs;                              /* BATCH slots */
};

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

struct scream_rx *scream_rx_new(uint32_t header_size, uint32_t max_packet, uint64_t sender_timeout_ns)
{
    if (header_size == 0 || header_size > SCREAM_RX_HEADER_MAX || max_packet <= header_size || max_packet > 65536)
        return NULL;
    struct scream_rx *rx = calloc(1, sizeof *rx);
    if (!rx)
        return NULL;
    rx->header_size = header_size;
    rx->max_packet = max_packet;
    rx->slot = max_packet + 1;
    rx->sender_timeout_ns = sender_timeout_ns;
    rx->bufs = malloc((size_t)rx->slot * BATCH);
    rx->pending_data = malloc(rx->slot);
    if (!rx->bufs || !rx->pending_data) {
        scream_rx_free(rx);
        return NULL;
    }
    return rx;
}

void scream_rx_free(struct scream_rx *rx)
{
    if (!rx)
        return;
    free(rx->bufs);
    free(rx->pending_data);
    free(rx);
}

void scream_rx_reset(struct scream_rx *rx)
{
    rx->have_format = 0;
    rx->frame_bytes = 0;
    rx->have_sender = 0;
    rx->pending = 0;
    rx->batch_next = rx->batch_count = 0;
}

static int is_refused(const struct scream_rx *rx, const uint8_t *h)
{
    for (uint32_t i = 0; i < rx->refused_count; ++i)
        if (memcmp(rx->refused[i], h, rx->header_size) == 0)
            return 1;
    return 0;
}

/* Drop a partial frame at the end of the block (the caller keeps out[0] on a frame boundary). */
static void drop_partial_frame(const struct scream_rx *rx, struct scream_rx_block *b)
{
    if (rx->frame_bytes)
        b->len -= b->len % rx->frame_bytes;
}

/* Space for one more datagram's payload and its chunk entry? */
static int block_has_room(const struct scream_rx *rx, const struct scream_rx_block *b)
{
    return b->len <= b->cap && b->cap - b->len >= rx->max_packet - rx->header_size
           && b->chunks < SCREAM_RX_MAX_CHUNKS;
}

/* The rules, in the order the Python receiver had them. Returns SCREAM_RX_HEADER when the datagram
 * was set aside for Python to check its header, SCREAM_RX_DATA otherwise (taken or counted). */
static uint32_t take(struct scream_rx *rx, const uint8_t *data, uint32_t len, uint32_t ip, uint32_t port,
                     int check_sender, uint64_t arrived, int header_checked, struct scream_rx_block *b)
{
    int new_sender = check_sender && (!rx->have_sender || ip != rx->sender_ip || port != rx->sender_port);
    /* signed: a time before the sender's last datagram (fed by hand) is within its timeout */
    if (new_sender && rx->have_sender && (int64_t)(arrived - rx->sender_seen_ns) < (int64_t)rx->sender_timeout_ns) {
        b->foreign++;
        b->foreign_ip = ip;
        b->foreign_port = port;
        return SCREAM_RX_DATA;
    }
    if (len > rx->max_packet) {
        b->bad_size++;
        return SCREAM_RX_DATA;
    }
    if (len < rx->header_size) {
        b->bad_short++;
        return SCREAM_RX_DATA;
    }
    uint8_t h[SCREAM_RX_HEADER_MAX];
    memcpy(h, data, rx->header_size);
    if (!header_checked && (!rx->have_format || memcmp(h, rx->header, rx->header_size) != 0)) {
        if (is_refused(rx, h)) {
            b->bad_header++;
            return SCREAM_RX_DATA;
        }
        /* unsigned: a time before the window (fed by hand) starts a new one */
        if (arrived - rx->ask_window_ns >= 1000000000u) {
            rx->ask_window_ns = arrived;
            rx->asked = 0;
        }
        if (rx->asked >= SCREAM_RX_ASK_PER_S) {
            b->bad_header++;
            b->bad_header_unasked++;
            return SCREAM_RX_DATA;
        }
        rx->asked++;
        memcpy(rx->pending_data, data, len);
        rx->pending = 1;
        rx->pending_len = len;
        rx->pending_ip = ip;
        rx->pending_port = port;
        rx->pending_check_sender = check_sender;
        rx->pending_ns = arrived;
        memset(b->header, 0, sizeof b->header);
        memcpy(b->header, h, rx->header_size);
        return SCREAM_RX_HEADER;
    }
    if (len == rx->header_size) {
        b->bad_empty++;
        return SCREAM_RX_DATA;
    }
    if (check_sender) {
        if (new_sender) {
            rx->have_sender = 1;
            rx->sender_ip = ip;
            rx->sender_port = port;
            b->sender_changed = 1;
            b->sender_ip = ip;
            b->sender_port = port;
            drop_partial_frame(rx, b);   /* a frame begun by the previous sender is never finished */
        }
        rx->sender_seen_ns = arrived;
    }
    uint32_t payload = len - rx->header_size;
    if (!block_has_room(rx, b)) {    /* the callers check first; never write past cap */
        b->bad_size++;
        return SCREAM_RX_DATA;
    }
    memcpy(b->out + b->len, data + rx->header_size, payload);
    b->len += payload;
    b->chunk_end[b->chunks] = b->len;
    b->chunk_arrived_ns[b->chunks] = arrived;
    b->chunks++;
    b->packets++;
    return SCREAM_RX_DATA;
}

uint32_t scream_rx_feed(struct scream_rx *rx, const uint8_t *data, uint32_t len, uint32_t ip, uint32_t port,
                        int check_sender, uint64_t arrived_ns, struct scream_rx_block *b)
{
    b->datagrams++;
    if (rx->pending || !block_has_room(rx, b)) {   /* call order: the caller handles those first */
        b->status = SCREAM_RX_ERROR;
        b->error = EBUSY;
        return b->status;
    }
    b->status = take(rx, data, len, ip, port, check_sender, arrived_ns, 0, b);
    return b->status;
}

uint32_t scream_rx_accept(struct scream_rx *rx, uint32_t frame_bytes, struct scream_rx_block *b)
{
    b->status = SCREAM_RX_DATA;
    if (!rx->pending)
        return b->status;
    rx->pending = 0;
    if (frame_bytes == 0) {   /* not a format: treat as refused */
        b->bad_header++;
        return b->status;
    }
    memcpy(rx->header, rx->pending_data, rx->header_size);
    rx->frame_bytes = frame_bytes;
    rx->have_format = 1;
    b->len = 0;   /* the new format starts a new block */
    b->chunks = 0;
    b->status = take(rx, rx->pending_data, rx->pending_len, rx->pending_ip, rx->pending_port,
                     rx->pending_check_sender, rx->pending_ns, 1, b);
    return b->status;
}

void scream_rx_reject(struct scream_rx *rx, struct scream_rx_block *b)
{
    if (!rx->pending)
        return;
    rx->pending = 0;
    b->bad_header++;
    memcpy(rx->refused[rx->refused_next], rx->pending_data, rx->header_size);
    rx->refused_next = (rx->refused_next + 1) % REFUSED;
    if (rx->refused_count < REFUSED)
        rx->refused_count++;
}

/* Handle what is left of the current batch. Returns SCREAM_RX_HEADER to stop, else SCREAM_RX_DATA. */
static uint32_t drain_batch(struct scream_rx *rx, uint32_t *budget, struct scream_rx_block *b)
{
    while (rx->batch_next < rx->batch_count && *budget > 0) {
        if (!block_has_room(rx, b))
            return SCREAM_RX_DATA;
        uint32_t i = rx->batch_next++;
        (*budget)--;
        b->datagrams++;
        const struct sockaddr_in *a = &rx->addr[i];
        uint32_t len = rx->msgs[i].msg_len;
        /* a truncated datagram reports its whole length or at least slot bytes: either way too long */
        if (rx->msgs[i].msg_hdr.msg_flags & MSG_TRUNC)
            len = rx->slot;
        if (len > rx->slot)
            len = rx->slot;
        int from_ipv4 = rx->msgs[i].msg_hdr.msg_namelen >= sizeof *a && a->sin_family == AF_INET;
        uint32_t st = take(rx, rx->bufs + (size_t)i * rx->slot, len, from_ipv4 ? a->sin_addr.s_addr : 0,
                           from_ipv4 ? ntohs(a->sin_port) : 0, 1, rx->batch_ns, 0, b);
        if (st == SCREAM_RX_HEADER)
            return st;
    }
    return SCREAM_RX_DATA;
}

uint32_t scream_rx_receive(struct scream_rx *rx, int fd, int timeout_ms, uint32_t max_datagrams,
                           struct scream_rx_block *b)
{
    b->error = 0;
    if (rx->pending) {   /* the caller did not answer the last header: ask again */
        memset(b->header, 0, sizeof b->header);
        memcpy(b->header, rx->pending_data, rx->header_size);
        b->status = SCREAM_RX_HEADER;
        return b->status;
    }
    uint32_t budget = max_datagrams;
    uint32_t handled = 0;
    if (rx->batch_next < rx->batch_count) {
        uint64_t before = b->datagrams;
        b->status = drain_batch(rx, &budget, b);
        handled += (uint32_t)(b->datagrams - before);
        if (b->status == SCREAM_RX_HEADER || rx->batch_next < rx->batch_count)
            return b->status;
    } else {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        int r = poll(&p, 1, timeout_ms);
        if (r < 0 && errno != EINTR) {
            b->error = errno;
            b->status = SCREAM_RX_ERROR;
            return b->status;
        }
        if (r <= 0) {
            b->status = SCREAM_RX_IDLE;
            return b->status;
        }
    }
    while (budget > 0 && block_has_room(rx, b)) {
        uint32_t want = budget < BATCH ? budget : BATCH;
        for (uint32_t i = 0; i < want; ++i) {
            rx->iov[i].iov_base = rx->bufs + (size_t)i * rx->slot;
            rx->iov[i].iov_len = rx->slot;
            memset(&rx->msgs[i].msg_hdr, 0, sizeof rx->msgs[i].msg_hdr);
            rx->msgs[i].msg_hdr.msg_iov = &rx->iov[i];
            rx->msgs[i].msg_hdr.msg_iovlen = 1;
            rx->msgs[i].msg_hdr.msg_name = &rx->addr[i];
            rx->msgs[i].msg_hdr.msg_namelen = sizeof rx->addr[i];
            rx->msgs[i].msg_len = 0;
        }
        int n = recvmmsg(fd, rx->msgs, want, MSG_DONTWAIT, NULL);
        if (n < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
                break;
            b->error = errno;
            b->status = handled ? SCREAM_RX_DATA : SCREAM_RX_ERROR;
            return b->status;
        }
        if (n == 0)
            break;
        rx->batch_next = 0;
        rx->batch_count = (uint32_t)n;
        rx->batch_ns = now_ns();
        uint64_t before = b->datagrams;
        uint32_t st = drain_batch(rx, &budget, b);
        handled += (uint32_t)(b->datagrams - before);
        if (st == SCREAM_RX_HEADER) {
            b->status = st;
            return st;
        }
        if (rx->batch_next < rx->batch_count || (uint32_t)n < want)
            break;   /* the block is full, or the socket is drained */
    }
    b->status = handled ? SCREAM_RX_DATA : SCREAM_RX_IDLE;
    return b->status;
}
