/* The benchmark's baseline: a minimal Scream UDP receiver that plays the way Scream's own Unix receiver
 * does with its PulseAudio back end (written for this benchmark from the behaviour described in
 * ../shared/docs/scream.md; Scream's receiver itself is not packaged for Debian). One blocking
 * pa_simple playback stream whose buffer attributes are the server's defaults except tlength = the
 * target latency; one datagram per recv(); the 5-byte header decides the format, and a change of
 * it reopens the stream. No drift correction, no jitter handling beyond Pulse's own buffer.
 *
 *     pa_simple_receiver PORT TARGET_MS SINK SERVER
 *
 * Built at benchmark time: cc -O2 pa_simple_receiver.c -lpulse-simple -lpulse
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pulse/error.h>
#include <pulse/simple.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define HEADER 5
#define MAX_PACKET (HEADER + 1152)

static volatile sig_atomic_t stop;

static void on_signal(int sig) { (void)sig; stop = 1; }

static pa_simple *open_stream(const unsigned char *h, unsigned target_ms, const char *sink, const char *server)
{
    pa_sample_spec ss;
    unsigned base = (h[0] & 0x80) ? 44100 : 48000, mult = h[0] & 0x7f;
    switch (h[1]) {
    case 16: ss.format = PA_SAMPLE_S16LE; break;
    case 24: ss.format = PA_SAMPLE_S24LE; break;
    case 32: ss.format = PA_SAMPLE_S32LE; break;
    default: return NULL;
    }
    if (mult == 0 || h[2] == 0 || h[2] > 8)
        return NULL;
    ss.rate = base * mult;
    ss.channels = h[2];
    pa_channel_map map;
    pa_channel_map_init_extend(&map, ss.channels, PA_CHANNEL_MAP_WAVEEX);
    pa_buffer_attr attr;
    memset(&attr, 0xff, sizeof attr);   /* (uint32_t)-1 everywhere: the server's defaults */
    attr.tlength = (uint32_t)pa_usec_to_bytes((pa_usec_t)target_ms * 1000, &ss);
    int err = 0;
    pa_simple *s = pa_simple_new(server, "baseline", PA_STREAM_PLAYBACK, sink, "baseline receiver", &ss, &map,
                                 &attr, &err);
    if (!s)
        fprintf(stderr, "pa_simple_new: %s\n", pa_strerror(err));
    return s;
}

int main(int argc, char **argv)
{
    if (argc != 5) {
        fprintf(stderr, "usage: %s PORT TARGET_MS SINK SERVER\n", argv[0]);
        return 2;
    }
    signal(SIGTERM, on_signal);
    signal(SIGINT, on_signal);
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(argv[1]))};
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || bind(fd, (struct sockaddr *)&addr, sizeof addr) < 0) {
        perror("bind");
        return 1;
    }
    struct timeval tv = {.tv_sec = 0, .tv_usec = 200000};   /* so a signal's stop is noticed */
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    unsigned char buf[MAX_PACKET + 1], header[HEADER] = {0};
    pa_simple *s = NULL;
    while (!stop) {
        ssize_t n = recv(fd, buf, sizeof buf, 0);
        if (n <= HEADER || n > MAX_PACKET)
            continue;
        if (!s || memcmp(header, buf, HEADER) != 0) {
            if (s)
                pa_simple_free(s);
            memcpy(header, buf, HEADER);
            s = open_stream(header, (unsigned)atoi(argv[2]), argv[3], argv[4]);
        }
        int err = 0;
        if (s && pa_simple_write(s, buf + HEADER, (size_t)(n - HEADER), &err) < 0) {
            fprintf(stderr, "pa_simple_write: %s\n", pa_strerror(err));
            pa_simple_free(s);
            s = NULL;
        }
    }
    if (s)
        pa_simple_free(s);
    close(fd);
    return 0;
}
