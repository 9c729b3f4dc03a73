#!/bin/sh
# PID 1 of the SPICE tests' shared guest (rdinit=/init-mic): the test guest's own init (input modules,
# input events on the serial line, the stand-in SPICE agent with agenttext=TEXT) plus an AC'97 sound card
# whose capture device micrec records, printing MIC lines (tests/spice/guest/micrec.c).
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
for module in $(cat /modules.list) $(cat /modules-snd.list); do
    case "$module" in
        psmouse.ko) insmod "/modules/$module" proto=exps ;;
        snd-intel8x0.ko) insmod "/modules/$module" ac97_clock=48000 ;;  # QEMU's clock: skip measuring it
        *) insmod "/modules/$module" ;;
    esac
done
echo "INIT modules loaded"
for arg in $(cat /proc/cmdline); do
    case "$arg" in
        agenttext=*) fakeagent "${arg#agenttext=}" & ;;
    esac
done
micrec &
exec /bin/evprint
