/*
 * Guest side of the SPICE input tests: prints every input event the guest kernel delivers, one line per
 * event, to stdout (the serial console), so the host can check what arrived and when.
 *
 *   DEV <n> <name>                       a new /dev/input/event<n> was opened
 *   EV <n> <type> <code> <value>         an event from event<n> (EV_SYN lines are left out)
 *
 * Devices appear while modules load and USB enumerates, so /dev/input is rescanned until exit.
 */
#include <dirent.h>
#include <fcntl.h>
#include <linux/input.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define MAX_DEVICES 32

static struct pollfd fds[MAX_DEVICES];
static int numbers[MAX_DEVICES];
static int count;

static int is_open(int number)
{
    for (int i = 0; i < count; i++)
        if (numbers[i] == number)
            return 1;
    return 0;
}

static void scan(void)
{
    DIR *dir = opendir("/dev/input");
    if (!dir)
        return;
    struct dirent *entry;
    while ((entry = readdir(dir)) != NULL && count < MAX_DEVICES) {
        int number;
        if (sscanf(entry->d_name, "event%d", &number) != 1 || is_open(number))
            continue;
        char path[64];
        snprintf(path, sizeof path, "/dev/input/event%d", number);
        int fd = open(path, O_RDONLY | O_NONBLOCK);
        if (fd < 0)
            continue;
        char name[128] = "?";
        ioctl(fd, EVIOCGNAME(sizeof name - 1), name);
        fds[count].fd = fd;
        fds[count].events = POLLIN;
        numbers[count++] = number;
        printf("DEV %d %s\n", number, name);
    }
    closedir(dir);
}

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    printf("EVPRINT started\n");
    for (;;) {
        scan();
        int ready = poll(fds, count, 100);
        if (ready <= 0)
            continue;
        for (int i = 0; i < count; i++) {
            if (!(fds[i].revents & POLLIN))
                continue;
            struct input_event ev[64];
            ssize_t n = read(fds[i].fd, ev, sizeof ev);
            for (ssize_t k = 0; k < n / (ssize_t)sizeof ev[0]; k++) {
                if (ev[k].type == EV_SYN || ev[k].type == EV_MSC)
                    continue;
                printf("EV %d %d %d %d\n", numbers[i], ev[k].type, ev[k].code, ev[k].value);
            }
        }
    }
}
