/*
 * A stand-in for spice-vdagent in the test guest: just enough of the VDAgent protocol, over the
 * com.redhat.spice.0 virtio port, to test the client's clipboard both ways. It prints what it gets:
 *
 *   AGENT caps <word>               the client announced its capabilities
 *   AGENT clipboard <len> <text>    the client sent UTF-8 text (the first 200 bytes are printed)
 *   AGENT image <type> <len> <hex>  the client sent an image (its first 8 bytes in hex)
 *   AGENT file <len> <fnv1a-32> <name>  the client sent a whole file (file transfer); then the guest
 *                                   copies an image: it grabs for a 2x2 BMP (see bmp below)
 *
 * On start it announces its capabilities (BY_DEMAND, SELECTION); once the client has announced, it
 * grabs the clipboard for its own text (argv[1]) and answers the client's request with it. When the
 * client grabs, it requests the first type the client offers.
 */
#include <dirent.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum { ANNOUNCE = 6, CLIPBOARD = 4, GRAB = 7, REQUEST = 8, XFER_START = 10, XFER_STATUS = 11, XFER_DATA = 12 };
enum { UTF8 = 1, BMP = 3 };
enum { XFER_CAN_SEND = 0, XFER_SUCCESS = 3 };

/* A 2x2 24-bit BMP, bottom-up rows padded to 4 bytes: red, green / blue, white (top row first). */
static const unsigned char bmp[70] = {
    'B', 'M', 70, 0, 0, 0, 0, 0, 0, 0, 54, 0, 0, 0,                /* file header */
    40, 0, 0, 0, 2, 0, 0, 0, 2, 0, 0, 0, 1, 0, 24, 0, 0, 0, 0, 0, /* info header: 2x2, 24 bpp */
    16, 0, 0, 0, 0x13, 0x0b, 0, 0, 0x13, 0x0b, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0xff, 0, 0, 0xff, 0xff, 0xff, 0, 0,                           /* bottom row: blue, white (BGR) */
    0, 0, 0xff, 0, 0xff, 0, 0, 0,                                 /* top row: red, green */
};

static uint32_t xfer_id, xfer_hash;
static uint64_t xfer_size, xfer_got;
static char xfer_name[256];
#define CAPS ((1u << 5) | (1u << 6)) /* CLIPBOARD_BY_DEMAND, CLIPBOARD_SELECTION */

static int port = -1;
static const char *text = "";

static void write_all(const void *data, size_t size)
{
    const char *p = data;
    while (size) {
        ssize_t n = write(port, p, size);
        if (n <= 0)
            exit(1);
        p += n;
        size -= n;
    }
}

/* One VDAgentMessage in one chunk: VDIChunkHeader {port 1, size}, then the message. */
static void send_msg(uint32_t type, const void *data, uint32_t size)
{
    uint32_t chunk[2] = {1, 20 + size};
    uint32_t head[5] = {1, type, 0, 0, size}; /* protocol, type, opaque (u64), size */
    char *buf = malloc(8 + 20 + size);
    memcpy(buf, chunk, 8);
    memcpy(buf + 8, head, 20);
    memcpy(buf + 28, data, size);
    write_all(buf, 28 + size);
    free(buf);
}

static void send_selection_u32(uint32_t type, uint32_t value)
{
    uint32_t body[2] = {0, value}; /* selection 0 (CLIPBOARD) + 3 reserved bytes, then the value */
    send_msg(type, body, sizeof body);
}

static int open_port(void)
{
    for (int tries = 0; tries < 100; tries++) {
        DIR *dir = opendir("/sys/class/virtio-ports");
        struct dirent *e;
        while (dir && (e = readdir(dir)) != NULL) {
            char path[300], name[64] = "";
            snprintf(path, sizeof path, "/sys/class/virtio-ports/%s/name", e->d_name);
            FILE *f = fopen(path, "r");
            if (!f)
                continue;
            fgets(name, sizeof name, f);
            fclose(f);
            if (strncmp(name, "com.redhat.spice.0", 18) == 0) {
                snprintf(path, sizeof path, "/dev/%s", e->d_name);
                closedir(dir);
                return open(path, O_RDWR);
            }
        }
        if (dir)
            closedir(dir);
        usleep(100000);
    }
    return -1;
}

static unsigned char *stream;
static size_t have, cap;

static void handle(uint32_t type, unsigned char *data, uint32_t size)
{
    if (type == ANNOUNCE && size >= 8) {
        uint32_t request, caps;
        memcpy(&request, data, 4);
        memcpy(&caps, data + 4, 4);
        printf("AGENT caps %#x\n", caps);
        if (request) {
            uint32_t reply[2] = {0, CAPS};
            send_msg(ANNOUNCE, reply, sizeof reply);
        }
        send_selection_u32(GRAB, UTF8);
    } else if (type == GRAB && size >= 8) {
        uint32_t first;
        memcpy(&first, data + 4, 4); /* after the selection prefix */
        send_selection_u32(REQUEST, first);
    } else if (type == REQUEST && size >= 8 && data[4] == BMP) {
        unsigned char body[8 + sizeof bmp] = {0};
        body[4] = BMP;
        memcpy(body + 8, bmp, sizeof bmp);
        send_msg(CLIPBOARD, body, sizeof body);
    } else if (type == XFER_START && size >= 4) {
        memcpy(&xfer_id, data, 4);
        char *keys = strndup((char *)data + 4, size - 4), *p;
        xfer_size = (p = strstr(keys, "size=")) ? strtoull(p + 5, NULL, 10) : 0;
        xfer_name[0] = 0;
        if ((p = strstr(keys, "name=")) != NULL)
            sscanf(p + 5, "%255[^\n]", xfer_name);
        free(keys);
        xfer_got = 0;
        xfer_hash = 2166136261u;
        uint32_t status[2] = {xfer_id, XFER_CAN_SEND};
        send_msg(XFER_STATUS, status, sizeof status);
    } else if (type == XFER_DATA && size >= 12) {
        uint32_t id;
        memcpy(&id, data, 4);
        if (id != xfer_id)
            return;
        for (uint32_t i = 12; i < size; i++)
            xfer_hash = (xfer_hash ^ data[i]) * 16777619u;
        xfer_got += size - 12;
        if (xfer_got >= xfer_size) {
            uint32_t status[2] = {xfer_id, XFER_SUCCESS};
            send_msg(XFER_STATUS, status, sizeof status);
            printf("AGENT file %llu %08x %s\n", (unsigned long long)xfer_got, xfer_hash, xfer_name);
            send_selection_u32(GRAB, BMP);
        }
    } else if (type == REQUEST) {
        size_t len = strlen(text);
        unsigned char *body = malloc(8 + len);
        memset(body, 0, 4);
        uint32_t kind = UTF8;
        memcpy(body + 4, &kind, 4);
        memcpy(body + 8, text, len);
        send_msg(CLIPBOARD, body, 8 + len);
        free(body);
    } else if (type == CLIPBOARD && size >= 8) {
        uint32_t kind, len = size - 8;
        memcpy(&kind, data + 4, 4);
        if (kind == UTF8) {
            printf("AGENT clipboard %u %.*s\n", len, len > 200 ? 200 : (int)len, (char *)data + 8);
        } else {
            printf("AGENT image %u %u ", kind, len);
            for (uint32_t i = 0; i < len && i < 8; i++)
                printf("%02x", data[8 + i]);
            printf("\n");
        }
    }
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc > 1)
        text = argv[1];
    port = open_port();
    if (port < 0) {
        printf("AGENT no port\n");
        return 1;
    }
    uint32_t announce[2] = {1, CAPS};
    send_msg(ANNOUNCE, announce, sizeof announce);
    printf("AGENT started\n");
    unsigned char buf[65536];
    for (;;) {
        ssize_t n = read(port, buf, sizeof buf);
        if (n <= 0) {
            usleep(10000);
            continue;
        }
        if (have + n > cap) {
            cap = (have + n) * 2;
            stream = realloc(stream, cap);
        }
        memcpy(stream + have, buf, n);
        have += n;
        /* Strip VDIChunkHeaders, then take whole VDAgentMessages. Chunks are kept contiguous in a
         * second buffer. */
        static unsigned char *msgs;
        static size_t mhave, mcap;
        size_t off = 0;
        while (have - off >= 8) {
            uint32_t csize;
            memcpy(&csize, stream + off + 4, 4);
            if (have - off < 8 + csize)
                break;
            if (mhave + csize > mcap) {
                mcap = (mhave + csize) * 2;
                msgs = realloc(msgs, mcap);
            }
            memcpy(msgs + mhave, stream + off + 8, csize);
            mhave += csize;
            off += 8 + csize;
        }
        memmove(stream, stream + off, have - off);
        have -= off;
        size_t moff = 0;
        while (mhave - moff >= 20) {
            uint32_t type, size;
            memcpy(&type, msgs + moff + 4, 4);
            memcpy(&size, msgs + moff + 16, 4);
            if (mhave - moff < 20 + size)
                break;
            handle(type, msgs + moff + 20, size);
            moff += 20 + size;
        }
        memmove(msgs, msgs + moff, mhave - moff);
        mhave -= moff;
    }
}
