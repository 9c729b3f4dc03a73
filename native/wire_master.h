/* Looking Glass master wire format: LGMP protocol 12 + KVMFR version 34.
 *
 * The second layout beside wire.h (B7). Same rules as wire.h: the C helper includes it, cffi's cdef
 * reads this very text (fixed-width fields, plain structs, "#define NAME integer" lines), and
 * wire_check.h pins every offset with static asserts. Names that mean the same thing in both
 * versions (frame types, flags, queue ids, record types) are declared once, in wire.h.
 *
 * Layout facts: shared/docs/lgmp-kvmfr.md sections 4.1-4.2 (LGMP v10/v12) and 6 (KVMFR 34), confirmed
 * against a Looking Glass master host's memory (shared/fixtures/lg-master/).
 */

/* ---- LGMP v12 --------------------------------------------------------------------------- */
#define LGMP12_PROTOCOL_VERSION 12
#define LGMP12_MAX_QUEUES       6
#define LGMP12_MAX_SUBS         8
#define LGMP12_MSGS_MAX         16
#define LGMP12_MSGS_SIZE        64
#define LGMP12_HEADER_SIZE      9728
#define LGMP12_MAGIC_OFFSET     9664
#define LGMP12_UDATA_OFFSET     9684
#define LGMP12_RING_ALIGN       64     /* each message ring starts on a 64-byte boundary */
#define LGMP12_HEARTBEAT_PUBLISH_MS 250 /* the host publishes `timestamp` at most this often */

/* LGMP 12 status codes beyond B7's 0..17 (numbering inferred from order, spec 9.4) */
#define LGMP12_ERR_QUEUE_CLOSED  18

struct lgmp12_client_message {
    uint32_t size;
    uint32_t clientID;          /* stamped by the sender; the host drops messages from non-subscribers */
    uint8_t  pad[8];
    uint8_t  data[64];
};

struct lgmp12_header_queue {
    uint32_t position;          /* atomic */
    uint32_t start;
    uint32_t count;             /* atomic */
    uint32_t pad0;
    uint64_t msgTimeout;        /* atomic */
    uint8_t  pad1[40];
    uint32_t lock;              /* atomic spin lock, alone in its cache line */
    uint8_t  pad2[60];
    uint32_t cMsgLock;          /* atomic spin lock */
    uint32_t cMsgAvail;         /* atomic */
    uint32_t cMsgWPos;          /* atomic */
    uint32_t cMsgWSerial;       /* atomic */
    uint32_t cMsgRSerial;       /* atomic */
    uint8_t  pad3[44];
    uint32_t subs;              /* atomic: bits 31..16 ON, 15..0 BAD (8 used) */
    uint32_t newSubCount;       /* atomic */
    uint32_t clientID[8];
    uint64_t timeout[8];
    uint32_t queueID;
    uint32_t numMessages;       /* a power of two, at least 2; no spare slot */
    uint32_t messagesOffset;
    uint32_t maxTime;
    uint8_t  pad4[8];
    struct lgmp12_client_message cMsgs[16];
};

struct lgmp12_header {
    uint64_t timestamp;         /* atomic: host heartbeat, host ms, published every >= 250 ms */
    uint32_t nextClientID;      /* atomic: a client takes fetch_add(1) + 1, skipping 0 */
    uint8_t  pad0[52];
    struct lgmp12_header_queue queues[6];
    uint32_t magic;             /* written last at init */
    uint32_t version;
    uint32_t sessionID;         /* never 0 */
    uint32_t numQueues;         /* atomic: the host may add queues after start */
    uint32_t udataSize;
    uint8_t  udata[4];          /* udataSize bytes start here (offset 9684) */
    uint8_t  pad1[40];
};

struct lgmp12_header_message {
    uint64_t udata;
    uint32_t size;
    uint32_t offset;
    uint32_t pendingSubs;       /* atomic */
    uint8_t  pad[12];
};

/* ---- KVMFR 34 --------------------------------------------------------------------------- */
#define KVMFR34_VERSION          34

#define KVMFR_FEATURE_WINDOWSIZE     2
#define KVMFR_FEATURE_FRAME_SCHEDULE 4
#define KVMFR_FEATURE_INPUT          8
#define KVMFR_FEATURE_CLIPBOARD      16

/* Queues 3..6 exist only on the Windows IDD host; the legacy host creates 1 and 2. */
#define LGMP_Q_FRAME_OWNER_A     3
#define LGMP_Q_FRAME_OWNER_B     4
#define LGMP_Q_INPUT             5
#define LGMP_Q_CLIPBOARD         6
#define LGMP12_Q_POINTER_LEN     32
#define LGMP12_Q_FRAME_LEN       2

#define FRAME_FLAG_HDR_METADATA  32

#define KVMFR_FRAME_TIMING_PHASE_VALID 1
#define KVMFR_SDR_WHITE_LEVEL_DEFAULT  203

#define CURSOR_FLAG_COLOR_TRANSFORM 8
#define CURSOR_FLAG_VISIBLE_VALID   16
#define KVMFR_COLOR_TRANSFORM_SIZE  65592

#define KVMFR_MESSAGE_WINDOWSIZE     1
#define KVMFR_MESSAGE_FRAME_SCHEDULE 2

/* The last 64 KiB of the region may hold the IDD host's recovery block (magic "KVMFRRCV"); when it is
 * live, LGMP runs over the region less this size. */
#define KVMFR_R_REGION_SIZE      65536

struct kvmfr34_frame {
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
    uint32_t flags;
    uint32_t damageRectsCount;
    uint32_t sdrWhiteLevel;     /* nits */
    uint64_t captureTime;       /* the host's stage durations, ns; trusted only when timingValid */
    uint64_t postProcessTime;
    uint64_t copyTime;
    uint64_t readyTime;
    uint64_t holdTime;
    uint64_t readyLeadTime;
    uint32_t timingSerial;      /* == frameSerial when the timings belong to this frame */
    uint32_t timingValid;       /* atomic: set (release) after the copy */
    uint32_t timingFlags;
    uint8_t  timingReserved[4];
    uint16_t hdrDisplayPrimary[6];  /* [3][2], 0.00002 units */
    uint16_t hdrWhitePoint[2];
    uint32_t hdrMaxDisplayLuminance;        /* cd/m^2 */
    uint32_t hdrMinDisplayLuminance;        /* 0.0001 cd/m^2 */
    uint32_t hdrMaxContentLightLevel;
    uint32_t hdrMaxFrameAverageLightLevel;
    uint32_t scheduleGeneration;
    uint32_t scheduleEpoch;
    uint32_t scheduleDeadlineSerial;
    uint8_t  hdrReserved[20];
    struct kvmfr_damage_rect damageRects[64];
};

struct kvmfr34_cursor {
    int16_t  x;
    int16_t  y;
    uint32_t type;
    int8_t   hx;
    int8_t   hy;
    uint8_t  pad[2];
    uint32_t width;
    uint32_t height;
    uint32_t pitch;
    uint32_t sdrWhiteLevel;     /* nits; the shape follows at 28 */
};

struct kvmfr_window_size {
    uint32_t type;              /* KVMFR_MESSAGE_WINDOWSIZE */
    uint32_t w;
    uint32_t h;
};
