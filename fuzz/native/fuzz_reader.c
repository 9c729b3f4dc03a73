/* libFuzzer harness: the native reader (native/lgmp_client.c) on a memory image built from the input.
 *
 * Drives, through the public kv_* API only: session init (header, KVMFR user data and records, queue
 * table, the post-B7 layout probe), subscribe to both queues, queue stats, wait, frame peek and copy
 * (full, row by row into a wider buffer, or damage rectangles only; the progressive write pointer),
 * done / skip to newest, cursor messages with shapes, a client message (SETCURSORPOS), a read position
 * as --inspect sets it, unsubscribe and the session check. Any crash, sanitizer report or hang is a
 * finding. Both layouts the reader speaks: B7 (LGMP 6 / KVMFR 20) and master (LGMP 12 / KVMFR 34), which
 * the reader tells apart by the memory. Input layout: fuzz/native/image.h; control[0] picks copy modes,
 * control[1] how many messages to read, control[2] how far back from the write position to start
 * reading (a still image has no new messages), control[3] bit 0 reads live (from the position, as a
 * new subscriber), bit 1 picks the layout the harness treats as meant (master: the heartbeat it moves
 * sits at offset 0, not 16; the rings it clears afterwards are LGMP 12's).
 */
#include "image.h"
#include "kv_internal.h"

static struct image img;
static struct kv_client *client;
static uint8_t *dst;
#define DST_SIZE (8u << 20)
static uint8_t shape[KVMFR_CURSOR_SHAPE_MAX];

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    image_init(&img, "fuzz-reader");
    client = kv_client_new();
    dst = malloc(DST_SIZE);
    struct kv_error err;
    if (!client || !dst || kv_client_open(client, img.path, &err) != LGMP_OK) {
        fprintf(stderr, "fuzz_reader: cannot set up: %s\n", err.message);
        abort();
    }
    return 0;
}

/* What the client may have written (subscriber words, rings, client messages, nextClientID) must be
 * cleared too: in both layouts, as the image may hold either whatever control[3] says. */
static void mark_client_writes(void)
{
    image_mark(&img, 0, LGMP12_HEADER_SIZE);
    struct lgmp_header *h = (struct lgmp_header *)img.base;
    for (int i = 0; i < LGMP_MAX_QUEUES; ++i) {
        uint64_t n = h->queues[i].numMessages;
        image_mark(&img, h->queues[i].messagesOffset, (n > 4096 ? 4096 : n) * sizeof(struct lgmp_header_message));
    }
    struct lgmp12_header *h12 = (struct lgmp12_header *)img.base;
    for (int i = 0; i < LGMP12_MAX_QUEUES; ++i) {
        uint64_t n = h12->queues[i].numMessages;
        image_mark(&img, h12->queues[i].messagesOffset,
                   (n > 4096 ? 4096 : n) * sizeof(struct lgmp12_header_message));
    }
}

static void read_frames(struct kv_error *err, uint8_t ctl, unsigned count)
{
    for (unsigned i = 0; i < count; ++i) {
        struct kv_frame_info fi;
        if (kv_client_frame_peek(client, &fi, err) != LGMP_OK)
            continue;
        if (ctl & 128) {
            kv_client_frame_done(client, err);   /* peeked, then dropped without a copy */
            continue;
        }
        uint32_t pitch = fi.pitch;
        int mode = (ctl & 1) ? KV_COPY_DAMAGE : KV_COPY_FULL;
        if (ctl & 2)
            pitch += 64;   /* a destination with wider rows: the row-by-row path */
        uint64_t need = (uint64_t)pitch * (fi.data_height - 1) + fi.row_len;
        uint64_t size = (ctl & 4) && need > 0 ? need - 1 : (need < DST_SIZE ? need : DST_SIZE);
        int rc = kv_client_frame_copy(client, &fi, dst, size, pitch, mode, err);
        if (rc == KV_ERR_DST_TOO_SMALL)
            kv_client_frame_done(client, err);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!image_load(&img, data, size))
        return 0;
    uint8_t ctl = img.control[0];
    unsigned count = 1 + (img.control[1] & 3);
    struct kv_error err;
    struct kv_host_info info;
    kv_client_init(client);
    /* The heartbeat moved since init: the host counts as running. */
    if (img.control[3] & 2)
        ((struct lgmp12_header *)img.base)->timestamp += 1;
    else
        ((struct lgmp_header *)img.base)->timestamp += 1;
    if (kv_client_session_init(client, &info, &err) == LGMP_OK) {
        kv_client_subscribe(client, LGMP_Q_FRAME, &err);
        kv_client_subscribe(client, LGMP_Q_POINTER, &err);
        struct kv_queue_stats st;
        if (!(img.control[3] & 1)) {
            /* A still image has no new messages after our subscribe: read from up to 4 messages back,
             * as --inspect does, so the messages already in the image are parsed. */
            for (uint32_t q = LGMP_Q_POINTER; q <= LGMP_Q_FRAME; ++q) {
                kv_client_queue_stats(client, q, &st);
                if (st.num_messages)
                    kv_client_set_read_pos(client, q, (st.position + 4 * st.num_messages - 1 - (img.control[2] & 3)) %
                                           st.num_messages, &err);
            }
        }
        kv_client_queue_stats(client, LGMP_Q_FRAME, &st);
        kv_client_queue_stats(client, LGMP_Q_POINTER, &st);
        uint32_t ready = 0;
        kv_client_wait(client, KV_READY_FRAME | KV_READY_CURSOR, 0, 1, &ready, &err);
        if (ctl & 8)
            kv_client_frame_skip_to_newest(client, &err);
        read_frames(&err, ctl, count);
        for (unsigned i = 0; i < count + 1; ++i) {
            struct kv_cursor_info ci;
            kv_client_cursor_next(client, &ci, shape, (ctl & 16) ? 64 : sizeof shape, &err);
        }
        if (ctl & 32)
            kv_client_set_cursor_pos(client, 10, 20, 0, &err);
        if (ctl & 64) {
            /* --inspect: read the newest frame of a still copy. */
            kv_client_queue_stats(client, LGMP_Q_FRAME, &st);
            if (st.num_messages)
                kv_client_set_read_pos(client, LGMP_Q_FRAME, (st.position + st.num_messages - 1) % st.num_messages,
                                       &err);
            read_frames(&err, ctl, 1);
        }
        kv_client_session_valid(client, &err);
        kv_client_unsubscribe(client, LGMP_Q_FRAME);
        kv_client_unsubscribe(client, LGMP_Q_POINTER);
    }
    mark_client_writes();
    return 0;
}
