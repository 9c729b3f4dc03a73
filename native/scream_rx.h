/* Scream UDP receive path: drains the socket with recvmmsg (the GIL released) and applies the
 * per-datagram rules, appending the owning sender's PCM to a caller-supplied block.
 *
 * Parsed by cffi's cdef: plain declarations only. The protocol's sizes and timeout come from Python
 * (kvmfr_client.audio.scream_wire / scream_udp) through scream_rx_new, and whether a header describes
 * a playable format is decided in Python (scream_wire.parse_udp_header): C only compares header bytes
 * with the one Python accepted and with those it refused, so each rule is written once.
 */

#define SCREAM_RX_MAX_CHUNKS    256   /* datagrams one block can hold (each one chunk of the block) */
#define SCREAM_RX_HEADER_MAX    8     /* the largest header_size scream_rx_new takes */
#define SCREAM_RX_ASK_PER_S     64    /* new headers handed to Python in one second; past that, refused
                                         unasked until the second is over */

/* scream_rx_receive / scream_rx_feed / scream_rx_accept status */
#define SCREAM_RX_IDLE          0     /* nothing arrived within the timeout (or a signal woke poll) */
#define SCREAM_RX_DATA          1     /* datagrams were handled; the block may hold audio */
#define SCREAM_RX_HEADER        2     /* a header not seen before: check block.header, then call
                                         scream_rx_accept or scream_rx_reject */
#define SCREAM_RX_ERROR         3     /* poll/recvmmsg failed: block.error is errno */

/* What one call hands back. The caller owns the struct and `out`; the counters only ever grow. */
struct scream_rx_block {
    uint8_t *out;               /* PCM of the accepted format; out[0] starts a frame */
    uint32_t cap;               /* bytes at out */
    uint32_t len;               /* bytes filled (the caller sets it back to its carried partial frame) */
    uint32_t chunks;            /* datagrams appended since the caller last set chunks = 0 */
    uint32_t chunk_end[256];    /* SCREAM_RX_MAX_CHUNKS: where each one's payload ends in out */
    uint64_t chunk_arrived_ns[256];  /* CLOCK_MONOTONIC when it was read off the socket */
    uint32_t status;
    int32_t  error;
    uint8_t  header[8];         /* SCREAM_RX_HEADER: the header to check (header_size bytes) */
    uint32_t sender_changed;    /* set when a new sender took over (the caller clears it) */
    uint32_t sender_ip;         /* the sender's IPv4 address as in sin_addr (network order) */
    uint32_t sender_port;       /* host order */
    uint64_t datagrams;         /* read, all kinds */
    uint64_t packets;           /* appended */
    uint64_t foreign;           /* from another address while the sender is active */
    uint32_t foreign_ip;        /* the last such address (for the log), as sender_ip/sender_port */
    uint32_t foreign_port;
    uint64_t bad_size;          /* longer than max_packet (arrived truncated) */
    uint64_t bad_short;         /* shorter than the header */
    uint64_t bad_header;        /* a header Python refused (or, over the budget below, that went unasked) */
    uint64_t bad_header_unasked;  /* of those, new headers past SCREAM_RX_ASK_PER_S in one second */
    uint64_t bad_empty;         /* a header and no audio */
};

struct scream_rx;

/* One receiver's state and its recvmmsg buffers (allocated here, once). NULL on bad sizes or no memory. */
struct scream_rx *scream_rx_new(uint32_t header_size, uint32_t max_packet, uint64_t sender_timeout_ns);
void scream_rx_free(struct scream_rx *rx);

/* Wait up to timeout_ms for datagrams on the non-blocking UDP socket fd, then handle at most
 * max_datagrams of them (fewer when the block is full or a new header needs checking). Call it with
 * the GIL released; it neither allocates nor blocks past the timeout. */
uint32_t scream_rx_receive(struct scream_rx *rx, int fd, int timeout_ms, uint32_t max_datagrams,
                           struct scream_rx_block *b);

/* One datagram handed in directly (tests, fuzzing): the same rules. check_sender 0 skips ownership. */
uint32_t scream_rx_feed(struct scream_rx *rx, const uint8_t *data, uint32_t len, uint32_t ip, uint32_t port,
                        int check_sender, uint64_t arrived_ns, struct scream_rx_block *b);

/* The header in block.header describes a playable format whose frames are frame_bytes long: it becomes
 * the format, and the datagram that carried it is handled. The caller has emptied the block (a new
 * format starts a new block; a partial frame of the old one is dropped). */
uint32_t scream_rx_accept(struct scream_rx *rx, uint32_t frame_bytes, struct scream_rx_block *b);
/* The header is not playable: its datagram is counted in bad_header, and so is every later one with
 * the same header, without asking again. */
void scream_rx_reject(struct scream_rx *rx, struct scream_rx_block *b);
/* Forget the sender, the format and any half-handled datagram (a reset, as after a restart). */
void scream_rx_reset(struct scream_rx *rx);
