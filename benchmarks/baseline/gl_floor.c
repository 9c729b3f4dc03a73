/* The viewer benchmark's floor: the least CPU a GL viewer of this design can spend per shown frame on
 * this machine. Nothing but the per-frame work every such viewer has to do, in C, at the frame rate:
 *
 *   copy   the frame out of a shared-memory mapping into a private buffer (what kvmfr-view does, and what
 *          Looking Glass's client does into its pixel buffer), then glTexSubImage2D from that buffer
 *   direct glTexSubImage2D straight from the mapping (no copy of our own: a lower bound no safe client
 *          reaches, since the host may rewrite the frame under the upload)
 *
 * then the 1:1 glBlitFramebuffer into the window (flipped, as the viewer draws) and glXSwapBuffers. No
 * protocol, no cursor, no Python, no threads of our own. A child process rewrites the whole frame once a
 * period, as the guest agent does, so the copy reads memory another core wrote; its CPU is not counted
 * (RUSAGE_SELF). The window is made and the first 60 frames shown before the measured span starts.
 *
 *     gl_floor WIDTH HEIGHT SECONDS copy|direct [FPS]       (DISPLAY from the environment)
 *
 * Prints one JSON line: {"mode", "width", "height", "frames", "fps", "cpu_ms_per_frame", "wall_s"}.
 * Built at benchmark time: cc -O2 gl_floor.c -lGL -lX11
 */
#define _GNU_SOURCE
#include <GL/gl.h>
#include <GL/glext.h>
#include <GL/glx.h>
#include <X11/Xlib.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static PFNGLGENFRAMEBUFFERSPROC genFramebuffers;
static PFNGLBINDFRAMEBUFFERPROC bindFramebuffer;
static PFNGLFRAMEBUFFERTEXTURE2DPROC framebufferTexture2D;
static PFNGLBLITFRAMEBUFFERPROC blitFramebuffer;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static double cpu_s(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_utime.tv_sec + ru.ru_utime.tv_usec * 1e-6 + ru.ru_stime.tv_sec + ru.ru_stime.tv_usec * 1e-6;
}

static void sleep_until(double t)
{
    struct timespec ts = {(time_t)t, (long)((t - (time_t)t) * 1e9)};
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) != 0) {}
}

static void *proc(const char *name)
{
    void *p = (void *)glXGetProcAddress((const GLubyte *)name);
    if (!p) {
        fprintf(stderr, "gl_floor: no %s\n", name);
        exit(1);
    }
    return p;
}

/* The writer: rewrites the whole frame at the start of every period until its parent goes (killed with
 * it, whichever way the parent ends). */
static _Noreturn void writer(uint8_t *frame, size_t size, double period, pid_t parent)
{
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (getppid() != parent)   /* the parent went before prctl took effect */
        _exit(0);
    double next = now_s();
    for (unsigned n = 0;; ++n) {
        memset(frame, (int)(n & 0xff), size);
        next += period;
        sleep_until(next);
    }
}

int main(int argc, char **argv)
{
    if (argc < 5 || (strcmp(argv[4], "copy") && strcmp(argv[4], "direct"))) {
        fprintf(stderr, "usage: gl_floor WIDTH HEIGHT SECONDS copy|direct [FPS]\n");
        return 2;
    }
    int w = atoi(argv[1]), h = atoi(argv[2]);
    double seconds = atof(argv[3]), fps = argc > 5 ? atof(argv[5]) : 60.0;
    int direct = !strcmp(argv[4], "direct");
    if (w < 16 || h < 16 || w > 8192 || h > 8192 || seconds <= 0 || fps <= 0 || fps > 1000) {
        fprintf(stderr, "gl_floor: bad size, seconds or fps\n");
        return 2;
    }
    size_t size = (size_t)w * h * 4;
    double period = 1.0 / fps;
    uint8_t *shm = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    uint8_t *buf = aligned_alloc(64, size);
    if (shm == MAP_FAILED || !buf) {
        fprintf(stderr, "gl_floor: out of memory\n");
        return 1;
    }
    memset(buf, 0, size);
    pid_t parent = getpid();
    pid_t child = fork();
    if (child == 0)
        writer(shm, size, period, parent);

    Display *dpy = XOpenDisplay(NULL);
    if (!dpy) {
        fprintf(stderr, "gl_floor: cannot open the X display\n");
        kill(child, SIGTERM);
        return 1;
    }
    int attrs[] = {GLX_RGBA, GLX_DOUBLEBUFFER, GLX_RED_SIZE, 8, GLX_GREEN_SIZE, 8, GLX_BLUE_SIZE, 8, None};
    XVisualInfo *vi = glXChooseVisual(dpy, DefaultScreen(dpy), attrs);
    if (!vi) {
        fprintf(stderr, "gl_floor: no double-buffered RGB visual\n");
        kill(child, SIGTERM);
        return 1;
    }
    Window root = RootWindow(dpy, vi->screen);
    XSetWindowAttributes swa = {0};
    swa.colormap = XCreateColormap(dpy, root, vi->visual, AllocNone);
    swa.event_mask = StructureNotifyMask;
    swa.override_redirect = True;   /* at 0,0 and exactly WxH, like the benchmark's borderless viewer */
    Window win = XCreateWindow(dpy, root, 0, 0, w, h, 0, vi->depth, InputOutput, vi->visual,
                               CWColormap | CWEventMask | CWOverrideRedirect, &swa);
    XMapWindow(dpy, win);
    for (XEvent ev;;) {
        XNextEvent(dpy, &ev);
        if (ev.type == MapNotify)
            break;
    }
    GLXContext ctx = glXCreateContext(dpy, vi, NULL, True);
    glXMakeCurrent(dpy, win, ctx);
    genFramebuffers = proc("glGenFramebuffers");
    bindFramebuffer = proc("glBindFramebuffer");
    framebufferTexture2D = proc("glFramebufferTexture2D");
    blitFramebuffer = proc("glBlitFramebuffer");
    PFNGLXSWAPINTERVALMESAPROC swap_interval = (PFNGLXSWAPINTERVALMESAPROC)glXGetProcAddress(
        (const GLubyte *)"glXSwapIntervalMESA");
    if (swap_interval)
        swap_interval(0);   /* paced by our own clock, as the viewer is without vsync */

    /* The viewer's texture: unsized GL_RGBA filled from BGRA rows (renderer.py says why). */
    GLuint tex, fbo;
    glGenTextures(1, &tex);
    glBindTexture(GL_TEXTURE_2D, tex);
    glTexParameteri(GL_TEXTURE_2D, GL_TEXTURE_MIN_FILTER, GL_NEAREST);
    glTexParameteri(GL_TEXTURE_2D, GL_TEXTURE_MAG_FILTER, GL_NEAREST);
    glTexImage2D(GL_TEXTURE_2D, 0, GL_RGBA, w, h, 0, GL_BGRA, GL_UNSIGNED_BYTE, NULL);
    genFramebuffers(1, &fbo);
    bindFramebuffer(GL_READ_FRAMEBUFFER, fbo);
    framebufferTexture2D(GL_READ_FRAMEBUFFER, GL_COLOR_ATTACHMENT0, GL_TEXTURE_2D, tex, 0);
    glViewport(0, 0, w, h);

    const int warmup = 60;
    long target = warmup + (long)(seconds * fps);
    double next = now_s(), t0 = 0, c0 = 0;
    for (long n = 0; n < target; ++n) {
        if (n == warmup) {
            t0 = now_s();
            c0 = cpu_s();
        }
        next += period;
        sleep_until(next);
        const uint8_t *src = shm;
        if (!direct) {
            memcpy(buf, shm, size);
            src = buf;
        }
        glTexSubImage2D(GL_TEXTURE_2D, 0, 0, 0, w, h, GL_BGRA, GL_UNSIGNED_BYTE, src);
        blitFramebuffer(0, 0, w, h, 0, h, w, 0, GL_COLOR_BUFFER_BIT, GL_NEAREST);
        glXSwapBuffers(dpy, win);
    }
    double wall = now_s() - t0, cpu = cpu_s() - c0;
    long frames = target - warmup;
    kill(child, SIGTERM);
    waitpid(child, NULL, 0);
    printf("{\"mode\": \"%s\", \"width\": %d, \"height\": %d, \"frames\": %ld, \"fps\": %.2f, "
           "\"cpu_ms_per_frame\": %.3f, \"wall_s\": %.2f}\n",
           argv[4], w, h, frames, frames / wall, 1000 * cpu / frames, wall);
    glXMakeCurrent(dpy, None, NULL);
    glXDestroyContext(dpy, ctx);
    XCloseDisplay(dpy);
    return 0;
}
