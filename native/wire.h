/* Looking Glass B7 wire format: LGMP protocol 6 + KVMFR version 20.
 *
 * The one place where layouts and constants are written down. The C helper includes it, and
 * native/build_ffi.py feeds the same text to cffi's cdef, so Python reads these exact definitions.
 * Keep it in the subset cdef understands: fixed-width integer fields, plain structs, and
 * "#define NAME integer" lines. Offsets are pinned by static asserts in wire_check.h.
 *
 * Layout facts: shared/docs/lgmp-kvmfr.md sections 2 (LGMP v6) and 5 (KVMFR 20).
 */

/* ---- LGMP v6 ---------------------------------------------------------------------------- */
#define LGMP_PROTOCOL_MAGIC     0x504d474c
#define LGMP_PROTOCOL_VERSION   6
#define LGMP_MAX_QUEUES         5
#define LGMP_MAX_SUBS           32
#define LGMP_MSGS_MAX           10
#define LGMP_MSGS_SIZE          64
#define LGMP_HEARTBEAT_TIMEOUT_MS 1000
#define LGMP_HEADER_SIZE        5760
#define LGMP_UDATA_OFFSET       5756

/* Later LGMP layouts (post-B7), probed only to report a version mismatch clearly. */
#define LGMP_V10_MAGIC_OFFSET   8064
#define LGMP_V12_MAGIC_OFFSET   9664

struct lgmp_client_message {
    uint32_t size;
    uint8_t  data[64];
};

struct lgmp_header_queue {
    uint32_t queueID;
    uint32_t numMessages;
    uint32_t newSubCount;       /* atomic */
    uint32_t maxTime;
    uint32_t position;          /* atomic */
    uint32_t messagesOffset;
    uint64_t timeout[32];
    uint32_t clientID[32];
    uint32_t lock;              /* atomic spin lock */
    uint32_t pad0;
    uint64_t subs;              /* atomic: bits 63..32 ON, 31..0 BAD */
    uint32_t start;
    uint32_t pad1;
    uint64_t msgTimeout;        /* atomic */
    uint32_t count;             /* atomic */
    uint32_t cMsgLock;          /* atomic spin lock */
    uint32_t cMsgAvail;         /* atomic */
    uint32_t cMsgWPos;          /* atomic */
    uint32_t cMsgWSerial;       /* atomic */
    uint32_t cMsgRSerial;       /* atomic */
    struct lgmp_client_message cMsgs[10];
};

struct lgmp_header {
    uint32_t magic;
    uint32_t version;
    uint32_t sessionID;
    uint32_t pad0;
    uint64_t timestamp;         /* atomic: host heartbeat, host ms */
    uint32_t numQueues;
    uint32_t pad1;
    struct lgmp_header_queue queues[5];
    uint32_t udataSize;
    uint8_t  udata[4];          /* udataSize bytes start here (offset 5756) */
};

struct lgmp_header_message {
    uint32_t udata;
    uint32_t size;
    uint32_t offset;
    uint32_t pendingSubs;       /* atomic */
};

/* LGMP status codes (API values, not on the wire) */
#define LGMP_OK                  0
#define LGMP_ERR_CLOCK_FAILURE   1
#define LGMP_ERR_INVALID_ARGUMENT 2
#define LGMP_ERR_INVALID_SIZE    3
#define LGMP_ERR_INVALID_ALIGNMENT 4
#define LGMP_ERR_INVALID_SESSION 5
#define LGMP_ERR_NO_MEM          6
#define LGMP_ERR_NO_SHARED_MEM   7
#define LGMP_ERR_HOST_STARTED    8
#define LGMP_ERR_NO_QUEUES       9
#define LGMP_ERR_QUEUE_FULL      10
#define LGMP_ERR_QUEUE_EMPTY     11
#define LGMP_ERR_QUEUE_UNSUBSCRIBED 12
#define LGMP_ERR_QUEUE_TIMEOUT   13
#define LGMP_ERR_INVALID_MAGIC   14
#define LGMP_ERR_INVALID_VERSION 15
#define LGMP_ERR_NO_SUCH_QUEUE   16
#define LGMP_ERR_CORRUPTED       17

/* ---- KVMFR 20 --------------------------------------------------------------------------- */
#define KVMFR_VERSION            20
#define KVMFR_HEADER_SIZE        48
#define KVMFR_FEATURE_SETCURSORPOS 1

#define KVMFR_RECORD_VMINFO      1
#define KVMFR_RECORD_OSINFO      2
#define KVMFR_RECORD_HEADER_SIZE 8
#define KVMFR_VMINFO_FIXED_SIZE  51

#define KVMFR_OS_LINUX           0
#define KVMFR_OS_BSD             1
#define KVMFR_OS_OSX             2
#define KVMFR_OS_WINDOWS         3
#define KVMFR_OS_OTHER           4

#define LGMP_Q_POINTER           1
#define LGMP_Q_FRAME             2
#define LGMP_Q_POINTER_LEN       20
#define LGMP_Q_FRAME_LEN         2
#define KVMFR_SUB_TIMEOUT_MS     1000

#define FRAME_TYPE_INVALID       0
#define FRAME_TYPE_BGRA          1
#define FRAME_TYPE_RGBA          2
#define FRAME_TYPE_RGBA10        3
#define FRAME_TYPE_RGBA16F       4
#define FRAME_TYPE_BGR_32        5
#define FRAME_TYPE_RGB_24        6
#define FRAME_TYPE_MAX           7

#define FRAME_ROT_0              0
#define FRAME_ROT_90             1
#define FRAME_ROT_180            2
#define FRAME_ROT_270            3

#define FRAME_FLAG_BLOCK_SCREENSAVER  1
#define FRAME_FLAG_REQUEST_ACTIVATION 2
#define FRAME_FLAG_TRUNCATED     4
#define FRAME_FLAG_HDR           8
#define FRAME_FLAG_HDR_PQ        16

#define KVMFR_MAX_DAMAGE_RECTS   64
#define FB_CHUNK_SIZE            1048576
#define FB_WP_SIZE               4

#define CURSOR_TYPE_COLOR        0
#define CURSOR_TYPE_MONOCHROME   1
#define CURSOR_TYPE_MASKED_COLOR 2

#define CURSOR_FLAG_POSITION     1
#define CURSOR_FLAG_VISIBLE      2
#define CURSOR_FLAG_SHAPE        4

/* B7 producer: 3 shape blocks of 24 + 512*512*4 bytes bound the shape. */
#define KVMFR_CURSOR_MAX_DIM     512
#define KVMFR_CURSOR_SHAPE_MAX   1048576
#define KVMFR_CURSOR_SMALL_BLOCKS 20
#define KVMFR_CURSOR_SHAPE_BLOCKS 3

#define KVMFR_MESSAGE_SETCURSORPOS 0

struct kvmfr_header {
    char     magic[8];          /* "KVMFR---", no NUL */
    uint32_t version;
    char     hostver[32];
    uint32_t features;
};

struct kvmfr_record {
    uint8_t  type;
    uint8_t  pad[3];            /* not zero in real B7 dumps: ignore */
    uint32_t size;
};

struct kvmfr_damage_rect {
    uint32_t x;
    uint32_t y;
    uint32_t width;
    uint32_t height;
};

struct kvmfr_frame {
    uint32_t formatVer;
    uint32_t frameSerial;
    uint32_t type;
    uint32_t screenWidth;
    uint32_t screenHeight;
    uint32_t dataWidth;
    uint32_t dataHeight;
    uint32_t frameWidth;
    uint32_t frameHeight;
    uint32_t rotation;
    uint32_t stride;
    uint32_t pitch;
    uint32_t offset;            /* from this struct to the frame buffer (wp + data) */
    uint32_t damageRectsCount;
    struct kvmfr_damage_rect damageRects[64];
    uint32_t flags;
};

struct kvmfr_cursor {
    int16_t  x;
    int16_t  y;
    uint32_t type;
    int8_t   hx;
    int8_t   hy;
    uint8_t  pad[2];
    uint32_t width;
    uint32_t height;
    uint32_t pitch;
};

struct kvmfr_set_cursor_pos {
    uint32_t type;
    int32_t  x;
    int32_t  y;
};
