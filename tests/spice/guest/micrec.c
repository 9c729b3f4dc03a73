/*
 * The test guest's microphone reader: records its sound card's capture device (raw ALSA ioctls, no
 * alsa-lib: the initramfs has no libraries) as stereo S16 at 48 kHz and prints, on the serial console:
 *
 *   MIC mixer <control> <value>  the capture gain set to its maximum (it starts at 0)
 *   MIC open <period frames>     the capture stream runs (QEMU now asks the SPICE client for audio)
 *   MIC onset <frame>            the first 10 ms block louder than -30 dBFS (RMS), counted from the start
 *   MIC freq <Hz> <rms x1000> <quiet blocks>  the left channel's frequency (zero crossings) over 0.5 s of
 *                                loud 10 ms blocks after the onset, and how many blocks between were quiet
 *
 * then exits; so does it, printing "MIC timeout", when no tone came within 10 minutes (the emulated card's
 * capture costs the host ~6 % of a core while it runs). argv[1]: the PCM device (default /dev/snd/pcmC0D0c).
 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>
#include <sound/asound.h>

#define RATE 48000
#define BLOCK 480 /* 10 ms */

static void mask_only(struct snd_pcm_hw_params *p, int param, unsigned value)
{
    struct snd_mask *m = &p->masks[param - SNDRV_PCM_HW_PARAM_FIRST_MASK];
    memset(m, 0, sizeof *m);
    m->bits[value / 32] = 1u << (value % 32);
}

static void interval_only(struct snd_pcm_hw_params *p, int param, unsigned value)
{
    struct snd_interval *i = &p->intervals[param - SNDRV_PCM_HW_PARAM_FIRST_INTERVAL];
    memset(i, 0, sizeof *i);
    i->min = i->max = value;
    i->integer = 1;
}

/* Set every value of mixer control NAME to its maximum (a switch: on); prints what it set. The sound
 * card's capture gain starts at 0, which QEMU passes to the SPICE client as volume 0. */
static void mixer_max(const char *name)
{
    int fd = open("/dev/snd/controlC0", O_RDWR);
    if (fd < 0)
        return;
    struct snd_ctl_elem_info info;
    memset(&info, 0, sizeof info);
    info.id.iface = SNDRV_CTL_ELEM_IFACE_MIXER;
    snprintf((char *)info.id.name, sizeof info.id.name, "%s", name);
    if (ioctl(fd, SNDRV_CTL_IOCTL_ELEM_INFO, &info) == 0) {
        struct snd_ctl_elem_value value;
        memset(&value, 0, sizeof value);
        value.id = info.id;
        long max = info.type == SNDRV_CTL_ELEM_TYPE_BOOLEAN ? 1 : info.value.integer.max;
        for (unsigned i = 0; i < info.count && i < 128; i++)
            value.value.integer.value[i] = max;
        if (ioctl(fd, SNDRV_CTL_IOCTL_ELEM_WRITE, &value) == 0)
            printf("MIC mixer %s %ld\n", name, max);
    }
    close(fd);
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    const char *dev = argc > 1 ? argv[1] : "/dev/snd/pcmC0D0c";
    int fd = -1;
    for (int tries = 0; tries < 100 && fd < 0; tries++) {
        fd = open(dev, O_RDWR);
        if (fd < 0)
            usleep(100000);
    }
    if (fd < 0) {
        printf("MIC error open %s: %s\n", dev, strerror(errno));
        return 1;
    }
    mixer_max("Capture Volume");
    mixer_max("Capture Switch");
    struct snd_pcm_hw_params p;
    memset(&p, 0, sizeof p);
    for (int i = 0; i <= SNDRV_PCM_HW_PARAM_LAST_MASK - SNDRV_PCM_HW_PARAM_FIRST_MASK; i++)
        memset(&p.masks[i], 0xff, sizeof p.masks[i]);
    for (int i = 0; i <= SNDRV_PCM_HW_PARAM_LAST_INTERVAL - SNDRV_PCM_HW_PARAM_FIRST_INTERVAL; i++)
        p.intervals[i].max = ~0u;
    p.rmask = ~0u;
    p.info = ~0u;
    mask_only(&p, SNDRV_PCM_HW_PARAM_ACCESS, SNDRV_PCM_ACCESS_RW_INTERLEAVED);
    mask_only(&p, SNDRV_PCM_HW_PARAM_FORMAT, SNDRV_PCM_FORMAT_S16_LE);
    mask_only(&p, SNDRV_PCM_HW_PARAM_SUBFORMAT, SNDRV_PCM_SUBFORMAT_STD);
    interval_only(&p, SNDRV_PCM_HW_PARAM_CHANNELS, 2);
    interval_only(&p, SNDRV_PCM_HW_PARAM_RATE, RATE);
    interval_only(&p, SNDRV_PCM_HW_PARAM_PERIOD_SIZE, BLOCK);
    interval_only(&p, SNDRV_PCM_HW_PARAM_PERIODS, 4);
    if (ioctl(fd, SNDRV_PCM_IOCTL_HW_PARAMS, &p) < 0) {
        printf("MIC error hw_params: %s\n", strerror(errno));
        return 1;
    }
    if (ioctl(fd, SNDRV_PCM_IOCTL_PREPARE) < 0 || ioctl(fd, SNDRV_PCM_IOCTL_START) < 0) {
        printf("MIC error start: %s\n", strerror(errno));
        return 1;
    }
    printf("MIC open %u\n", p.intervals[SNDRV_PCM_HW_PARAM_PERIOD_SIZE - SNDRV_PCM_HW_PARAM_FIRST_INTERVAL].min);
    static int16_t buf[BLOCK * 2];
    long frame = 0, onset = -1, crossings = 0, after = 0, quiet = 0;
    double energy = 0;
    int16_t last = 0;
    for (;;) {
        struct snd_xferi x = {.buf = buf, .frames = BLOCK};
        if (ioctl(fd, SNDRV_PCM_IOCTL_READI_FRAMES, &x) < 0) {
            if (errno == EPIPE) { /* overrun: start again */
                ioctl(fd, SNDRV_PCM_IOCTL_PREPARE);
                ioctl(fd, SNDRV_PCM_IOCTL_START);
                continue;
            }
            printf("MIC error read: %s\n", strerror(errno));
            return 1;
        }
        long n = x.result;
        double sum = 0;
        for (long i = 0; i < n; i++)
            sum += (double)buf[2 * i] * buf[2 * i];
        double rms = n ? sqrt(sum / n) / 32768.0 : 0;
        if (onset < 0 && rms > 0.0316) {
            onset = frame;
            printf("MIC onset %ld\n", onset);
        } else if (onset >= 0) {
            /* Only loud blocks count: a block the host could not fill in time (a loaded machine) is
             * silence, which says nothing about the tone's frequency; such blocks are counted apart. */
            if (rms > 0.0316) {
                for (long i = 0; i < n; i++) {
                    int16_t s = buf[2 * i];
                    if ((s >= 0) != (last >= 0))
                        crossings++;
                    last = s;
                }
                energy += sum;
                after += n;
            } else {
                quiet++;
            }
            if (after >= RATE / 2 || quiet > 500) {
                printf("MIC freq %ld %ld %ld\n", after ? crossings * RATE / (2 * after) : 0,
                       after ? (long)(1000 * sqrt(energy / after) / 32768.0) : 0, quiet);
                return 0;
            }
        }
        frame += n;
        if (onset < 0 && frame > 600L * RATE) {
            printf("MIC timeout\n");
            return 1;
        }
    }
}
