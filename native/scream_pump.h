/* Scream UDP steady-state pump: one call, made with the GIL released, receives datagrams (scream_rx),
 * decodes S16 PCM to float, resamples at the ratio Python last set and writes to the Pulse stream,
 * until something needs Python's policy. Parsed by cffi's cdef: plain declarations only.
 *
 * libpulse is not linked: Python hands over the function pointers of the library it loaded (ctypes).
 */

#define SCREAM_PUMP_SAMPLES     64
/* A caller that runs its stream's loop itself (pulse.py's own_loop) runs at most this many passes of it
 * per call, without waiting: a pass that finds nothing to do ends it sooner. */
#define SCREAM_PUMP_LOOP_PASSES 64

/* why scream_pump returned */
#define SCREAM_PUMP_RX          1     /* scream_rx status in rx_status (HEADER, ERROR, a new sender, IDLE) */
#define SCREAM_PUMP_POLICY      2     /* a packet is waiting and policy_due_ns has passed (query, window) */
#define SCREAM_PUMP_UNDERFLOW   3     /* Pulse's underflow index changed: the waiting packet needs policy */
#define SCREAM_PUMP_CATCHUP     4     /* the last packet's latency exceeded max_ahead */
#define SCREAM_PUMP_FULL        5     /* the sample array is full */
#define SCREAM_PUMP_PULSE_ERROR 6     /* pa_stream_write failed (the packet is dropped) */
#define SCREAM_PUMP_BAD         7     /* the block is not something the pump handles (format, sizes) */

struct scream_pump_sample {
    uint64_t arrived_ns;      /* CLOCK_MONOTONIC */
    uint64_t measured_ns;     /* just before the write */
    uint64_t after_ns;        /* just after it */
    double   before;          /* seconds queued in the stream ahead of it (carried-forward model) */
    uint32_t frames_in, frames_out;
};

struct scream_pump {
    /* set by Python */
    uint64_t ml, stream;                        /* pa_threaded_mainloop * (or pa_mainloop *), pa_stream * */
    uint64_t fn_lock, fn_unlock, fn_write, fn_underflow_index;
    uint64_t fn_iterate;                        /* pa_mainloop_iterate when this thread runs the loop (fn_lock 0) */
    struct kv_resampler *resampler;
    float   *scratch_in, *scratch_out;          /* float frames (channels interleaved) */
    uint32_t scratch_in_frames, scratch_out_frames;
    uint32_t frame_bytes, channels, rate;       /* the accepted format (16-bit only) */
    double   ratio;
    float    gain;
    uint64_t wait_until_ns;                     /* the longest wait for datagrams (stop is noticed) */
    uint64_t policy_due_ns;                     /* a packet after this goes back to Python first */
    double   max_ahead;
    uint64_t queried_ns;                        /* the in-stream model (player._in_stream) */
    double   queried_value, written_since;
    int64_t  underflow_index;                   /* Pulse's, as Python last handled it */
    uint32_t underflow_valid;                   /* 0: read it at the next write */
    /* kept by C */
    uint32_t cursor;                            /* block chunks already played */
    uint32_t start_frame;                       /* frame where chunk `cursor` starts in the block */
    uint32_t rx_status;
    int32_t  pulse_rc;
    double   model_end;                         /* seconds, CLOCK_MONOTONIC (player._model_end) */
    uint32_t samples;                           /* filled entries (Python sets it back to 0) */
    struct scream_pump_sample sample[64];       /* SCREAM_PUMP_SAMPLES */
};

uint32_t scream_pump(struct scream_rx *rx, int fd, struct scream_rx_block *b, struct scream_pump *p);
/* Drop the played chunks from the block, keeping the unplayed ones and a partial frame at its end. */
void scream_pump_compact(struct scream_rx_block *b, struct scream_pump *p);
