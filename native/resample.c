/* The player's drift resampler (see resample.h). What the numpy version did in ~20 array operations a
 * packet (a few hundred microseconds of CPU on a cold cache, every 6 ms) is one pass here. The
 * arithmetic is the same: positions in double, the cubic in float. */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "resample.h"

_Static_assert(sizeof(((struct kv_resampler *)0)->hist) / sizeof(float)
               == KV_RESAMPLE_HISTORY * KV_RESAMPLE_MAX_CHANNELS, "hist size");

int kv_resampler_init(struct kv_resampler *st, uint32_t channels)
{
    if (channels == 0 || channels > KV_RESAMPLE_MAX_CHANNELS)
        return -1;
    memset(st, 0, sizeof *st);
    st->channels = channels;
    st->history = KV_RESAMPLE_HISTORY;
    st->pos = 1.0;
    return 0;
}

static int state_ok(const struct kv_resampler *st)
{
    return st->channels >= 1 && st->channels <= KV_RESAMPLE_MAX_CHANNELS && st->history <= KV_RESAMPLE_HISTORY
           && st->pos >= 1.0 && st->pos < 4.0;
}

uint32_t kv_resample_bound(const struct kv_resampler *st, uint32_t frames, double ratio)
{
    if (!(ratio >= 0.5 && ratio <= 2.0) || !state_ok(st))
        return 0;
    double limit = (double)st->history + frames - 2;
    double count = ceil((limit - st->pos) / ratio);
    return count > 0 ? (uint32_t)count : 0;
}

uint32_t kv_resample(struct kv_resampler *st, const float *in, uint32_t frames, double ratio, float gain,
                     float *out, uint32_t out_cap)
{
    if (!(ratio >= 0.5 && ratio <= 2.0) || !state_ok(st) || frames > (1u << 24))
        return UINT32_MAX;
    const uint32_t ch = st->channels, h = st->history;
    const uint64_t total = (uint64_t)h + frames;     /* frames in (history + input) */
    uint32_t count = kv_resample_bound(st, frames, ratio);
    if (count > out_cap)
        return UINT32_MAX;
    /* frame k of (history + input) */
#define AT(k) ((k) < h ? st->hist + (size_t)(k) * ch : in + ((size_t)(k) - h) * ch)
    for (uint32_t j = 0; j < count; ++j) {
        double p = st->pos + ratio * j;
        uint64_t i = (uint64_t)p;                     /* p >= 1: floor */
        float t = (float)(p - (double)i);
        if (i < 1 || i + 2 >= total) {                /* only a rounding at the bound's edge: stop there */
            count = j;
            break;
        }
        const float *y0 = AT(i - 1), *y1 = AT(i), *y2 = AT(i + 1), *y3 = AT(i + 2);
        float *o = out + (size_t)j * ch;
        for (uint32_t c = 0; c < ch; ++c) {
            float a = y0[c], b = y1[c], d = y2[c], e = y3[c];
            float v = b + 0.5f * t * (d - a + t * (2.0f * a - 5.0f * b + 4.0f * d - e + t * (3.0f * (b - d) + e - a)));
            o[c] = v * gain;
        }
    }
    /* keep the frames from floor(pos) - 1 on as the next call's history */
    double pos = st->pos + ratio * count;
    uint64_t keep_from = (uint64_t)floor(pos) - 1;
    float hist[KV_RESAMPLE_HISTORY * KV_RESAMPLE_MAX_CHANNELS];
    uint32_t keep = total > keep_from ? (uint32_t)(total - keep_from) : 0;
    if (keep > KV_RESAMPLE_HISTORY)
        return UINT32_MAX;                            /* cannot happen: pos ends within a frame of the end */
    for (uint32_t k = 0; k < keep; ++k)
        memcpy(hist + (size_t)k * ch, AT(keep_from + k), ch * sizeof(float));
#undef AT
    memcpy(st->hist, hist, (size_t)keep * ch * sizeof(float));
    st->history = keep;
    st->pos = pos - (double)keep_from;
    return count;
}
