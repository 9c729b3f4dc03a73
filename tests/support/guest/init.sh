#!/bin/sh
# PID 1 of the test guest: mount the kernel file systems, load the input modules, print input events.
# Kernel parameter agenttext=TEXT also starts the stand-in SPICE agent with TEXT as the guest clipboard.
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
for module in $(cat /modules.list); do
    case "$module" in
        psmouse.ko) insmod "/modules/$module" proto=exps ;;  # ExplorerPS/2 (wheel, 5 buttons) without slow probing
        *) insmod "/modules/$module" ;;
    esac
done
echo "INIT modules loaded"
for arg in $(cat /proc/cmdline); do
    case "$arg" in
        agenttext=*) fakeagent "${arg#agenttext=}" & ;;
    esac
done
exec /bin/evprint
