/* Scream UDP steady-state pump (see scream_pump.h): receive, decode, resample and write to Pulse in
 * one call with the GIL released, so that a packet in the steady state costs no Python at all. Every
 * decision that is policy (underruns, catch-up, the drift ratio, format and sender changes, errors)
 * stays in Python: the pump returns to it. No allocation; the block's bounds are checked here again.
 */
#define _GNU_SOURCE
#include <stdint.h>
#include <string.h>
#include <time.h>

#include "resample.h"
#include "scream_rx.h"
#include "scream_pump.h"

_Static_assert(sizeof(((struct scream_pump *)0)->sample) / sizeof(struct scream_pump_sample) == SCREAM_PUMP_SAMPLES,
               "sample size");

typedef void (*ml_fn)(void *);
typedef int (*write_fn)(void *, const void *, size_t, void (*)(void *), int64_t, int);
typedef int64_t (*uflow_fn)(const void *);
typedef int (*iterate_fn)(void *, int, int *);

/* Our own loop (the caller's thread runs it, pulse.py's own_loop): passes without waiting until nothing
 * is left to do, which takes in what the server sent (an underflow report before the check, the release
 * of written blocks) and sends what was written. One pass reads or writes one piece of one message; a
 * flood's writes left the server's messages behind. Bounded (SCREAM_PUMP_LOOP_PASSES). */
static void loop_run(const struct scream_pump *p)
{
    for (int i = 0; i < SCREAM_PUMP_LOOP_PASSES; ++i)
        if (((iterate_fn)(uintptr_t)p->fn_iterate)((void *)(uintptr_t)p->ml, 0, NULL) <= 0)
            break;
}

/* A threaded loop: its lock; our own: run it. */
static void loop_enter(const struct scream_pump *p)
{
    if (p->fn_lock)
        ((ml_fn)(uintptr_t)p->fn_lock)((void *)(uintptr_t)p->ml);
    else if (p->fn_iterate)
        loop_run(p);
}

static void loop_leave(const struct scream_pump *p)
{
    if (p->fn_unlock)
        ((ml_fn)(uintptr_t)p->fn_unlock)((void *)(uintptr_t)p->ml);
    else if (p->fn_iterate)
        loop_run(p);
}

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void scream_pump_compact(struct scream_rx_block *b, struct scream_pump *p)
{
    uint32_t fb = p->frame_bytes;
    if (fb == 0 || b->len > b->cap)
        return;
    uint32_t whole = b->len - b->len % fb;
    uint32_t tail = b->len - whole;
    if (p->cursor < b->chunks)
        return;   /* unplayed chunks: Python's path handles them */
    memmove(b->out, b->out + whole, tail);
    b->len = tail;
    b->chunks = 0;
    p->cursor = 0;
    p->start_frame = 0;
}

/* Play the block's chunks from p->cursor. 0 when all are played, else the reason to return. */
static uint32_t play_chunks(struct scream_rx_block *b, struct scream_pump *p)
{
    uint32_t fb = p->frame_bytes, ch = p->channels;
    if (fb == 0 || ch == 0 || ch > KV_RESAMPLE_MAX_CHANNELS || fb != 2 * ch || p->rate == 0 || b->len > b->cap
        || b->chunks > SCREAM_RX_MAX_CHUNKS)
        return SCREAM_PUMP_BAD;
    while (p->cursor < b->chunks) {
        if (p->samples >= SCREAM_PUMP_SAMPLES)
            return SCREAM_PUMP_FULL;
        uint32_t end = b->chunk_end[p->cursor];
        if (end > b->len)
            end = b->len;
        uint32_t stop = end / fb;
        if (stop <= p->start_frame) {   /* under a frame: nothing to play */
            p->cursor++;
            continue;
        }
        uint64_t now = now_ns();
        if (now >= p->policy_due_ns)
            return SCREAM_PUMP_POLICY;
        uint32_t frames = stop - p->start_frame;
        if (frames > p->scratch_in_frames)
            return SCREAM_PUMP_BAD;
        /* The underflow index before the resampler: a chunk handed back to Python (which plays it
         * through the same resampler) must not have moved the resampler's state on already. */
        loop_enter(p);
        int64_t idx = ((uflow_fn)(uintptr_t)p->fn_underflow_index)((void *)(uintptr_t)p->stream);
        if (p->underflow_valid && idx != p->underflow_index) {
            loop_leave(p);
            p->underflow_index = idx;
            return SCREAM_PUMP_UNDERFLOW;
        }
        p->underflow_index = idx;
        p->underflow_valid = 1;
        const uint8_t *src = b->out + (size_t)p->start_frame * fb;
        uint32_t n = frames * ch;
        for (uint32_t i = 0; i < n; ++i) {
            int16_t v;
            memcpy(&v, src + 2 * (size_t)i, 2);   /* little-endian hosts only (as numpy's "<i2" on x86) */
            p->scratch_in[i] = (float)v * (1.0f / 32768.0f);
        }
        uint32_t out = kv_resample(p->resampler, p->scratch_in, frames, p->ratio, p->gain, p->scratch_out,
                                   p->scratch_out_frames);
        if (out == UINT32_MAX) {
            loop_leave(p);
            return SCREAM_PUMP_BAD;
        }
        double before = p->queried_value + p->written_since - (double)(int64_t)(now - p->queried_ns) * 1e-9;
        if (before < 0)
            before = 0;
        uint64_t measured = now_ns();
        int rc = out ? ((write_fn)(uintptr_t)p->fn_write)((void *)(uintptr_t)p->stream, p->scratch_out,
                                                           (size_t)out * ch * sizeof(float), NULL, 0, 0)
                     : 0;
        loop_leave(p);
        uint64_t after = now_ns();
        p->start_frame = stop;
        p->cursor++;
        if (rc < 0) {
            p->pulse_rc = rc;
            return SCREAM_PUMP_PULSE_ERROR;
        }
        double seconds = (double)out / p->rate;
        double t = (double)after * 1e-9;
        p->model_end = (p->model_end > t ? p->model_end : t) + seconds;
        p->written_since += seconds;
        struct scream_pump_sample *s = &p->sample[p->samples++];
        s->arrived_ns = b->chunk_arrived_ns[p->cursor - 1];
        s->measured_ns = measured;
        s->after_ns = after;
        s->before = before;
        s->frames_in = frames;
        s->frames_out = out;
        double ahead = (double)(int64_t)(measured - s->arrived_ns) * 1e-9 + before;
        if (ahead > p->max_ahead)
            return SCREAM_PUMP_CATCHUP;
    }
    return 0;
}

uint32_t scream_pump(struct scream_rx *rx, int fd, struct scream_rx_block *b, struct scream_pump *p)
{
    uint32_t held = 0;   /* a receive status to report once the block is played */
    p->rx_status = SCREAM_RX_IDLE;
    p->pulse_rc = 0;
    for (;;) {
        uint32_t r = play_chunks(b, p);
        if (r)
            return r;
        scream_pump_compact(b, p);
        if (held || b->sender_changed) {
            p->rx_status = held ? held : SCREAM_RX_DATA;
            return SCREAM_PUMP_RX;
        }
        uint64_t now = now_ns();
        if (now >= p->wait_until_ns) {
            p->rx_status = SCREAM_RX_IDLE;
            return SCREAM_PUMP_RX;
        }
        int timeout = (int)((p->wait_until_ns - now + 999999) / 1000000);
        uint64_t before = b->datagrams;
        uint32_t st = scream_rx_receive(rx, fd, timeout, 256, b);
        if (st == SCREAM_RX_HEADER || st == SCREAM_RX_ERROR)
            held = st;
        else if (b->datagrams - before >= 256)
            held = SCREAM_RX_DATA;   /* a flood: Python measures the rate and paces the calls */
    }
}
