/* libFuzzer harness: the producer (native/lgmp_producer.c) against what clients write.
 *
 * Each input is a script of steps on a freshly started producer: a step either writes a value where
 * clients (or a hostile guest) can write, into the header, the queue table (subscriber bits, lock
 * words, counts, start, position, client message ring) or a ring, or calls the producer (tick, post a
 * frame with damage rectangles, post a cursor with or without a shape, take a client message,
 * subscribers, stats, restart), with a real reader subscribed now and then. Every producer call must
 * return within CALL_BOUND_NS: a call that takes longer is a finding (abort), as is any sanitizer
 * report. After the script, the region must be consistent again after at most two ticks (re-initialised
 * when it was overwritten), or that is a finding too.
 *
 * Both protocols: the input's first byte chooses the layout the producer writes (bit 0: 1 = master,
 * LGMP 12 / KVMFR 34; 0 = B7, LGMP 6 / KVMFR 20), and the client-writable offsets follow that layout.
 *
 * Input: u8 layout, then u8 steps...; each step is an opcode byte and its operands (see run_step).
 */
#include "image.h"
#include "kv_internal.h"

#define REGION_SIZE   (8u << 20)            /* the producer's file (its rings and blocks live here) */
#define CALL_BOUND_NS (1000ull * 1000000ull) /* "returns within a bound": the agent's SIGTERM promise */
#define W 16
#define H 16

static struct image img;
static struct kv_producer *prod;
static struct kv_client *client;
static struct kv_host_info host;
static int master;                 /* this input's layout: LGMP 12 (1) or LGMP 6 (0) */
static uint8_t pixels[H][W * 8];   /* rows wide enough for every type (RGBA16F: 8 bytes a pixel) */
static uint8_t shape_bytes[32 * 32 * 4];

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    image_init(&img, "fuzz-producer");
    if (ftruncate(img.fd, REGION_SIZE) != 0)
        abort();
    prod = kv_producer_new();
    client = kv_client_new();
    struct kv_error err;
    memset(&host, 0, sizeof host);
    snprintf(host.hostver, sizeof host.hostver, "fuzz");
    snprintf(host.capture, sizeof host.capture, "fuzz");
    host.features = KVMFR_FEATURE_SETCURSORPOS;
    host.os = KVMFR_OS_LINUX;
    if (!prod || !client || kv_producer_open(prod, img.path, 0, &err) != LGMP_OK ||
        kv_client_open(client, img.path, &err) != LGMP_OK) {
        fprintf(stderr, "fuzz_producer: cannot set up: %s\n", err.message);
        abort();
    }
    for (int y = 0; y < H; ++y)
        for (int x = 0; x < W * 8; ++x)
            pixels[y][x] = (uint8_t)(x * 7 + y);
    memset(shape_bytes, 0x5a, sizeof shape_bytes);
    return 0;
}

static uint64_t t0;
static const char *what;

static void begin(const char *name) { what = name; t0 = kv_now_ns(); }
static void end(void)
{
    uint64_t took = kv_now_ns() - t0;
    if (took > CALL_BOUND_NS) {
        fprintf(stderr, "fuzz_producer: %s took %llu ms\n", what, (unsigned long long)(took / 1000000ull));
        abort();
    }
}

/* A header or queue-descriptor field's offset in this input's layout. */
#define HF(field) (master ? offsetof(struct lgmp12_header, field) : offsetof(struct lgmp_header, field))
#define QF(field) (master ? offsetof(struct lgmp12_header_queue, field) : offsetof(struct lgmp_header_queue, field))
#define QSIZE(field) (master ? sizeof(((struct lgmp12_header_queue *)0)->field) \
                             : sizeof(((struct lgmp_header_queue *)0)->field))

/* Offsets where clients write, so the fuzzer spends its time on them. */
static uint64_t target_offset(uint8_t sel, uint16_t arg)
{
    uint32_t q = (sel >> 4) % 2;   /* the producer's queue table: frame queue first, then pointer */
    uint64_t qbase = HF(queues) + q * (master ? sizeof(struct lgmp12_header_queue) : sizeof(struct lgmp_header_queue));
    switch (sel & 15) {
    case 0: return HF(magic);
    case 1: return HF(sessionID);
    case 2: return HF(numQueues);
    case 3: return qbase + QF(lock);
    case 4: return qbase + QF(subs);
    case 5: return master ? qbase + QF(clientID) + (arg % QSIZE(clientID) & ~3u) : qbase + QF(subs) + 4;
    case 6: return qbase + QF(count);
    case 7: return qbase + QF(start);
    case 8: return qbase + QF(position);
    case 9: return qbase + QF(cMsgLock);
    case 10: return qbase + QF(cMsgAvail);
    case 11: return qbase + QF(cMsgWPos);
    case 12: return qbase + QF(cMsgs) + (arg % QSIZE(cMsgs) & ~3u);
    case 13: return qbase + QF(msgTimeout) + (arg & 4);
    case 14: {   /* a ring entry */
        uint32_t ring;
        memcpy(&ring, img.base + qbase + QF(messagesOffset), sizeof ring);
        return (uint64_t)ring % REGION_SIZE + (arg % 1024 & ~3u);
    }
    default: return arg % (master ? 16384 : 8192) & ~3u;
    }
}

static void post_frame(const uint8_t *op)
{
    struct kv_frame_info fi;
    struct kv_error err;
    memset(&fi, 0, sizeof fi);
    fi.serial = op[0];
    fi.type = 1 + op[1] % 6;
    fi.frame_width = fi.screen_width = W;
    fi.frame_height = fi.screen_height = H;
    fi.data_width = kv_data_width(fi.type, W);
    fi.data_height = H;
    fi.pitch = (uint32_t)kv_row_bytes(fi.type, fi.data_width);
    fi.damage_count = op[2] % 3;
    for (uint32_t i = 0; i < fi.damage_count; ++i) {
        fi.damage[i].x = op[3] % W;
        fi.damage[i].y = op[3] / W % H;
        fi.damage[i].width = 1 + (op[2] >> 4) % (W - fi.damage[i].x);
        fi.damage[i].height = 1;
    }
    begin("kv_producer_frame_begin");
    int rc = kv_producer_frame_begin(prod, &fi, op[1] & 0x80 ? 2 : 0, &err);
    end();
    if (rc != LGMP_OK)
        return;
    begin("kv_producer_frame_write");
    if (op[2] & 8)
        kv_producer_frame_write_damage(prod, &pixels[0][0], sizeof pixels[0], &err);
    else
        kv_producer_frame_write(prod, &pixels[0][0], sizeof pixels[0], 0, H, &err);
    if (op[2] & 16) {   /* with the host's stage timings (KVMFR 34 publishes them) */
        fi.host_capture_ns = op[3];
        fi.host_copy_ns = op[0];
        kv_producer_frame_end_timed(prod, &fi);
    } else {
        kv_producer_frame_end(prod);
    }
    end();
}

static void post_cursor(const uint8_t *op)
{
    struct kv_cursor_info ci;
    struct kv_error err;
    memset(&ci, 0, sizeof ci);
    ci.flags = op[0] & 7;
    ci.x = op[1];
    ci.y = op[2];
    ci.type = op[3] % 3;
    ci.width = 32;
    ci.height = 32;
    ci.pitch = 128;
    begin("kv_producer_cursor_post");
    kv_producer_cursor_post(prod, &ci, shape_bytes, 0, &err);
    end();
}

static void reader_step(uint8_t sel)
{
    struct kv_error err;
    struct kv_host_info info;
    if (sel & 1) {
        kv_client_init(client);
        *(uint64_t *)(img.base + HF(timestamp)) += 1;
        if (kv_client_session_init(client, &info, &err) == LGMP_OK) {
            kv_client_subscribe(client, LGMP_Q_FRAME, &err);
            kv_client_subscribe(client, LGMP_Q_POINTER, &err);
        }
    } else {
        struct kv_frame_info fi;
        static uint8_t out[H * W * 8];
        struct kv_cursor_info ci;
        static uint8_t shape[32 * 32 * 4];
        if (kv_client_frame_peek(client, &fi, &err) == LGMP_OK)
            kv_client_frame_copy(client, &fi, out, sizeof out, fi.pitch, KV_COPY_FULL, &err);
        kv_client_cursor_next(client, &ci, shape, sizeof shape, &err);
        if (sel & 2)
            kv_client_set_cursor_pos(client, 1, 2, 0, &err);
    }
}

/* One step; returns the bytes it used. */
static size_t run_step(const uint8_t *p, size_t n)
{
    if (n < 1)
        return n;
    uint8_t op = p[0] % 10;
    uint8_t a[8] = { 0 };
    size_t used = 1 + (n - 1 < sizeof a ? n - 1 : sizeof a);
    memcpy(a, p + 1, used - 1);
    switch (op) {
    case 0:
    case 1: {   /* a client (or the guest) writes 4 bytes where clients write */
        uint64_t off = target_offset(a[0], rd_u16(a + 1));
        if (off + 4 <= REGION_SIZE)
            image_write(&img, off, a + 3, 4);
        return 8 <= n ? 8 : n;
    }
    case 2:
        begin("kv_producer_tick");
        kv_producer_tick(prod);
        end();
        return 1;
    case 3:
        post_frame(a);
        return used < 5 ? used : 5;
    case 4:
        post_cursor(a);
        return used < 5 ? used : 5;
    case 5: {
        uint8_t msg[LGMP_MSGS_SIZE];
        uint32_t size;
        begin("kv_producer_next_message");
        kv_producer_next_message(prod, msg, &size);
        end();
        return 1;
    }
    case 6: {
        struct kv_queue_stats st;
        begin("kv_producer_subscribers");
        kv_producer_subscribers(prod, LGMP_Q_FRAME);
        kv_producer_queue_stats(prod, LGMP_Q_POINTER, &st);
        end();
        return 1;
    }
    case 7:
        reader_step(a[0]);
        return 2 <= n ? 2 : n;
    case 8: {   /* a client writes 8 bytes (subscriber bits, timeouts) */
        uint64_t off = target_offset(a[0], 0) & ~7ull;
        if (off + 8 <= REGION_SIZE && n >= 9)
            image_write(&img, off, p + 1, 8);
        return 9 <= n ? 9 : n;
    }
    default: {
        struct kv_error err;
        begin("kv_producer_start");
        kv_producer_start(prod, &host, &err);
        end();
        return 1;
    }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct kv_error err;
    image_clear(&img);
    image_mark(&img, 0, 65536);                /* header, queue table, rings: cleared after each input */
    kv_client_close(client);
    kv_client_open(client, img.path, &err);
    master = size > 0 && (data[0] & 1);
    host.lgmp_version = master ? LGMP12_PROTOCOL_VERSION : LGMP_PROTOCOL_VERSION;
    if (size > 0) {
        data++;
        size--;
    }
    if (kv_producer_start(prod, &host, &err) != LGMP_OK)
        abort();
    for (size_t i = 0; i < size && i < 4096;)
        i += run_step(data + i, size - i);
    /* Whatever was written, two ticks later the region is consistent again and posting works. */
    begin("kv_producer_tick");
    kv_producer_tick(prod);
    kv_producer_tick(prod);
    end();
    uint32_t magic, sid;
    memcpy(&magic, img.base + HF(magic), sizeof magic);
    memcpy(&sid, img.base + HF(sessionID), sizeof sid);
    if (magic != LGMP_PROTOCOL_MAGIC || sid != kv_producer_session_id(prod)) {
        fprintf(stderr, "fuzz_producer: the region was not repaired (magic %x)\n", magic);
        abort();
    }
    return 0;
}
