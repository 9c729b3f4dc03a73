/* The player's drift resampler: streaming cubic (Catmull-Rom) interpolation at a ratio close to 1, with
 * the software gain folded in. Python (kvmfr_client.audio.drift) picks the ratio; this does the
 * per-sample loop, continuous across calls. Parsed by cffi's cdef: plain declarations only.
 */

#define KV_RESAMPLE_MAX_CHANNELS 8
#define KV_RESAMPLE_HISTORY      3    /* frames kept from one call to the next (at most) */

struct kv_resampler {
    double   pos;                 /* read position in (history + new input), in frames */
    uint32_t channels;
    uint32_t history;             /* frames in hist */
    float    hist[24];            /* KV_RESAMPLE_HISTORY * KV_RESAMPLE_MAX_CHANNELS, interleaved */
};

/* A fresh stream: 3 frames of silence behind it, read position 1. 0, or -1 for a bad channel count. */
int kv_resampler_init(struct kv_resampler *st, uint32_t channels);

/* The largest number of frames kv_resample can write for `frames` input frames at `ratio`. */
uint32_t kv_resample_bound(const struct kv_resampler *st, uint32_t frames, double ratio);

/* Resample `frames` interleaved float frames at `ratio` (input frames consumed per output frame, 0.5-2)
 * and multiply by `gain`. Writes the output frames to out (room for out_cap frames) and returns how many;
 * returns UINT32_MAX and leaves the state as it was when the ratio is out of range or out is too small. */
uint32_t kv_resample(struct kv_resampler *st, const float *in, uint32_t frames, double ratio, float gain,
                     float *out, uint32_t out_cap);
