/* The native helper's API: the client and producer of both Looking Glass protocols, B7 (LGMP 6 /
 * KVMFR 20, wire.h) and master (LGMP 12 / KVMFR 34, wire_master.h). The client picks the protocol
 * from what the memory holds at each session init; the producer writes the one its kv_host_info's
 * lgmp_version names (6 or 12).
 *
 * Like wire.h this is parsed by cffi's cdef, so it stays plain. Handles are opaque; everything the
 * guest wrote reaches Python only through the copied-and-checked structs below.
 */

/* Errors of our own (LGMP status codes from wire.h are below 100). */
#define KV_ERR_MAP              100   /* open/fstat/ioctl/mmap failed; value = errno */
#define KV_ERR_SHM_TOO_SMALL    101   /* value = mapping size, limit = size needed */
#define KV_ERR_BAD_FIELD        102   /* a guest value failed a check: field, value, limit */
#define KV_ERR_KVMFR_MAGIC      103
#define KV_ERR_KVMFR_VERSION    104   /* value = host's KVMFR version */
#define KV_ERR_OTHER_LGMP       105   /* a post-B7 LGMP layout; value = its version */
#define KV_ERR_TIMEOUT          106
#define KV_ERR_WP_STALL         107   /* producer stopped advancing the frame write pointer */
#define KV_ERR_DST_TOO_SMALL    108
#define KV_ERR_SESSION_LOST     109   /* value: 1 = new session id, 2 = heartbeat stalled */
#define KV_ERR_NOT_READY        110   /* call order: no session / nothing peeked */
#define KV_ERR_NO_SUBSCRIBERS   111
#define KV_ERR_SHM_LOST         112   /* the file shrank or vanished under the mapping; value = KV_LOST_*,
                                         limit = the file's size now */

/* Why a mapping lost its file (kv_*_shm_lost, KV_ERR_SHM_LOST's value). */
#define KV_LOST_FAULT           1     /* an access faulted (SIGBUS): the range now reads zeros */
#define KV_LOST_SHRANK          2     /* the file is now smaller than the mapping */
#define KV_LOST_REMOVED         3     /* the file was deleted */

#define KV_READY_FRAME          1
#define KV_READY_CURSOR         2

#define KV_COPY_FULL            0
#define KV_COPY_DAMAGE          1

struct kv_error {
    int32_t  code;
    char     field[48];
    uint64_t value;
    uint64_t limit;
    char     message[200];
};

/* Host description: filled by the client from the KVMFR udata; given to the producer to write it. */
struct kv_host_info {
    uint32_t session_id;
    uint32_t lgmp_version;
    uint32_t kvmfr_version;
    uint32_t features;
    char     hostver[32];
    uint8_t  uuid[16];
    char     capture[32];
    uint8_t  cpus;
    uint8_t  cores;
    uint8_t  sockets;
    uint8_t  has_vminfo;
    char     model[128];
    int32_t  os;                /* -1 when no OSINFO record */
    char     os_name[128];
    uint32_t udata_size;
    uint32_t records;           /* number of records parsed */
};

/* A frame header after validation (a private copy of the guest's KVMFRFrame). */
struct kv_frame_info {
    uint32_t serial;
    uint32_t format_ver;
    uint32_t type;
    uint32_t screen_width;
    uint32_t screen_height;
    uint32_t data_width;
    uint32_t data_height;
    uint32_t frame_width;
    uint32_t frame_height;
    uint32_t rotation;
    uint32_t stride;
    uint32_t pitch;
    uint32_t flags;
    uint32_t damage_count;
    struct kvmfr_damage_rect damage[64];
    uint32_t bytes_per_pixel;   /* 4, 8, or 3 for the packed 24-bit kinds */
    uint32_t msg_size;          /* LGMP payload size */
    uint64_t data_size;         /* dataHeight * pitch */
    uint64_t row_len;           /* bytes of a stored row without padding (kv_row_bytes), at most pitch */
    uint64_t t_seen_ns;         /* CLOCK_MONOTONIC when peek saw the message */
    uint64_t t_copy_start_ns;
    uint64_t t_copy_end_ns;
    uint64_t bytes_copied;
    /* KVMFR 34 only (all 0 from a B7 host). */
    uint32_t sdr_white_level;   /* nits; 0 = not given */
    uint32_t timing_valid;      /* 1: the host's stage durations below belong to this frame */
    uint32_t timing_flags;
    uint32_t hdr_primaries[6];  /* mastering display primaries (R x,y, G x,y, B x,y), 0.00002 units */
    uint32_t hdr_white_point[2];
    uint32_t hdr_max_luminance; /* cd/m^2 */
    uint32_t hdr_min_luminance; /* 0.0001 cd/m^2 */
    uint32_t hdr_max_cll;
    uint32_t hdr_max_fall;
    uint32_t schedule_generation;
    uint32_t schedule_epoch;
    uint32_t schedule_deadline_serial;
    uint64_t host_capture_ns;   /* the host's stage durations (ns) */
    uint64_t host_post_process_ns;
    uint64_t host_copy_ns;
    uint64_t host_ready_ns;
    uint64_t host_hold_ns;
    uint64_t host_ready_lead_ns;
};

struct kv_cursor_info {
    uint32_t flags;
    int32_t  x;
    int32_t  y;
    uint32_t type;
    int32_t  hx;
    int32_t  hy;
    uint32_t width;
    uint32_t height;            /* for MONOCHROME: twice the visible height */
    uint32_t pitch;
    uint32_t shape_size;        /* bytes copied into the caller's buffer (0 without SHAPE) */
    uint64_t t_seen_ns;
    uint32_t sdr_white_level;   /* KVMFR 34: nits (0 from a B7 host) */
};

struct kv_queue_stats {
    uint32_t position;
    uint32_t start;
    uint32_t count;
    uint32_t num_messages;
    uint64_t subs;
    uint32_t new_sub_count;
    uint32_t slot;              /* our subscriber slot, or 0xffffffff */
};

uint64_t kv_now_ns(void);
uint64_t kv_now_ms(void);
/* Bytes per stored pixel (3 for the packed 24-bit kinds), 0 for an invalid type. */
uint32_t kv_frame_bpp(uint32_t type);
/* Texels a stored row needs for `width` pixels: the packed 24-bit kinds (3 bytes a pixel) count their
 * rows in 32-bit texels, every other kind one pixel a texel. 0 for an invalid type. */
uint32_t kv_data_width(uint32_t type, uint32_t width);
/* Bytes of a stored row of `data_width` texels, without padding (the smallest valid pitch). */
uint64_t kv_row_bytes(uint32_t type, uint32_t data_width);
uint64_t kv_recommended_shm_size(uint32_t width, uint32_t height, uint32_t bytes_per_pixel);

/* ---- mappings that survive their file shrinking (guard.c) ---- */
/* Register [addr, addr+len) (rounded out to whole pages: pass a whole mapping). A SIGBUS inside it
 * replaces it with zero pages and marks it lost instead of killing the process. Returns an id, or -1
 * when the table (64 entries) is full. Remove it before unmapping. */
int      kv_guard_add(const void *addr, uint64_t len);
void     kv_guard_remove(int id);
int      kv_guard_lost(int id);

/* ---- client ---- */
struct kv_client;
struct kv_client *kv_client_new(void);
void     kv_client_free(struct kv_client *c);
int      kv_client_open(struct kv_client *c, const char *path, struct kv_error *err);
uint64_t kv_client_shm_size(struct kv_client *c);
/* 0 while the mapping is backed by its file, else a KV_LOST_* reason (*size_now: the file's size). */
int      kv_client_shm_lost(struct kv_client *c, uint64_t *size_now);
/* Drop the mapping (the session with it); kv_client_open maps again. */
void     kv_client_close(struct kv_client *c);
void     kv_client_set_poll_us(struct kv_client *c, uint32_t poll_us);
/* B7 sessions stamp this id into their subscriber slots (random when 0); LGMP 12 sessions take theirs from
 * the host's nextClientID at each session init. */
void     kv_client_set_client_id(struct kv_client *c, uint32_t id);
/* Note the host's heartbeat (in whichever layout the memory holds) so session init can see it move. */
void     kv_client_init(struct kv_client *c);
/* Reads the memory's protocol afresh each time: B7 (magic at 0, LGMP 6 + KVMFR 20) or master (magic at
 * 9664, LGMP 12 + KVMFR 34); anything else is INVALID_MAGIC, INVALID_VERSION, KV_ERR_OTHER_LGMP or
 * KV_ERR_KVMFR_VERSION (limit = the host's LGMP version). info->lgmp_version / kvmfr_version say which. */
int      kv_client_session_init(struct kv_client *c, struct kv_host_info *info, struct kv_error *err);
int      kv_client_subscribe(struct kv_client *c, uint32_t queue_id, struct kv_error *err);
int      kv_client_unsubscribe(struct kv_client *c, uint32_t queue_id);
int      kv_client_session_valid(struct kv_client *c, struct kv_error *err);
/* Block until a subscribed queue in `mask` has a message, the session is lost, or timeout_ms passes.
 * Checks every poll_us microseconds (0: the client's default). */
int      kv_client_wait(struct kv_client *c, uint32_t mask, uint32_t timeout_ms, uint32_t poll_us, uint32_t *ready,
                        struct kv_error *err);
int      kv_client_frame_peek(struct kv_client *c, struct kv_frame_info *fi, struct kv_error *err);
int      kv_client_frame_copy(struct kv_client *c, struct kv_frame_info *fi, uint8_t *dst, uint64_t dst_size,
                              uint32_t dst_pitch, int mode, struct kv_error *err);
int      kv_client_frame_done(struct kv_client *c, struct kv_error *err);
int      kv_client_frame_skip_to_newest(struct kv_client *c, struct kv_error *err);
int      kv_client_cursor_next(struct kv_client *c, struct kv_cursor_info *ci, uint8_t *shape, uint32_t shape_size,
                               struct kv_error *err);
int      kv_client_send(struct kv_client *c, const uint8_t *data, uint32_t size, uint32_t *serial, struct kv_error *err);
int      kv_client_set_cursor_pos(struct kv_client *c, int32_t x, int32_t y, uint32_t timeout_ms, struct kv_error *err);
/* KVMFR 34 hosts that advertise KVMFR_FEATURE_WINDOWSIZE: ask the guest for a w x h display. */
int      kv_client_set_window_size(struct kv_client *c, uint32_t w, uint32_t h, struct kv_error *err);
int      kv_client_queue_stats(struct kv_client *c, uint32_t queue_id, struct kv_queue_stats *st);
/* Snapshots: move a subscribed queue's read position to `pos` (e.g. the newest message of a dump). The
 * message there is then read whatever its pending bits say, and finishing it never dequeues it (LGMP 12). */
int      kv_client_set_read_pos(struct kv_client *c, uint32_t queue_id, uint32_t pos, struct kv_error *err);

/* ---- producer ---- */
struct kv_producer;
struct kv_producer *kv_producer_new(void);
void     kv_producer_free(struct kv_producer *p);
int      kv_producer_open(struct kv_producer *p, const char *path, uint64_t create_size, struct kv_error *err);
uint64_t kv_producer_shm_size(struct kv_producer *p);
int      kv_producer_shm_lost(struct kv_producer *p, uint64_t *size_now);
/* Stop the ticker and the session and drop the mapping; kv_producer_open maps again. */
void     kv_producer_close(struct kv_producer *p);
int      kv_producer_start(struct kv_producer *p, const struct kv_host_info *host, struct kv_error *err);
void     kv_producer_stop(struct kv_producer *p);
uint32_t kv_producer_session_id(struct kv_producer *p);
uint64_t kv_producer_max_frame_size(struct kv_producer *p);
int      kv_producer_tick(struct kv_producer *p);
int      kv_producer_start_ticker(struct kv_producer *p, uint32_t interval_ms);
void     kv_producer_stop_ticker(struct kv_producer *p);
int      kv_producer_subscribers(struct kv_producer *p, uint32_t queue_id);
/* What the next frame_begin's frame changes in the picture when that is less than its damage says (a frame
 * sent whole to clients, most of which did not change): kv_producer_frame_write_damage then rewrites only
 * those rects in the slot. Applies to the next frame_begin call only, whatever it returns (set them again
 * before a retry); count 0 (as a frame without damage) or more
 * than KVMFR_MAX_DAMAGE_RECTS: the whole picture. */
void     kv_producer_set_changed(struct kv_producer *p, const struct kvmfr_damage_rect *rects, uint32_t count);
int      kv_producer_frame_begin(struct kv_producer *p, const struct kv_frame_info *fi, uint32_t timeout_ms,
                                 struct kv_error *err);
int      kv_producer_frame_write(struct kv_producer *p, const uint8_t *src, uint32_t src_pitch,
                                 uint32_t row0, uint32_t rows, struct kv_error *err);
int      kv_producer_frame_write_damage(struct kv_producer *p, const uint8_t *src, uint32_t src_pitch,
                                        struct kv_error *err);
int      kv_producer_frame_end(struct kv_producer *p);
/* KVMFR 34: end the frame and publish the host's stage durations for it, read from timing's
 * host_*_ns and timing_flags (after the copy: durations, timingSerial = frameSerial, then timingValid
 * with release). A B7 session ignores them; NULL is kv_producer_frame_end. */
int      kv_producer_frame_end_timed(struct kv_producer *p, const struct kv_frame_info *timing);
int      kv_producer_cursor_post(struct kv_producer *p, const struct kv_cursor_info *ci, const uint8_t *shape,
                                 uint32_t timeout_ms, struct kv_error *err);
int      kv_producer_next_message(struct kv_producer *p, uint8_t *data, uint32_t *size);
int      kv_producer_queue_stats(struct kv_producer *p, uint32_t queue_id, struct kv_queue_stats *st);
/* Times the producer found its region overwritten (magic, queue table, counts, a lock never released)
 * and re-initialised it with a new session id; *why (may be NULL) gets the last reason. */
uint32_t kv_producer_reinit_count(struct kv_producer *p, struct kv_error *why);
/* LGMP 12: client messages dropped because their clientID was no active subscriber's (acknowledged). */
uint32_t kv_producer_discarded_messages(struct kv_producer *p);
