#!/bin/sh
# PID 1 of the agent guest (rdinit=/init-agent): the test guest's modules plus virtio-9p, the host's root
# mounted read-only over 9p (kvmfr-vm's `shares`, tag hostroot), every IVSHMEM device enabled, then the
# command of kernel parameter agentcmd= (spaces written as +) run chrooted in the host's tree: our own agent,
# from the project's virtual environment, writing into a device's BAR2 through sysfs. Powers off after it.
# The test guest's evprint runs beside it, printing the guest's keyboard and mouse events.
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
for m in $(cat /modules.list) $(cat /modules-9p.list); do insmod /modules/$m 2>/dev/null; done
mkdir -p /host
mount -t 9p -o trans=virtio,version=9p2000.L,ro,msize=512000,cache=loose hostroot /host || echo "AGENT no 9p"
mount -t proc proc /host/proc
mount -t sysfs sys /host/sys
mount -t devtmpfs dev /host/dev
for d in /sys/bus/pci/devices/*; do
  if [ "$(cat $d/vendor)" = 0x1af4 ] && [ "$(cat $d/device)" = 0x1110 ]; then echo 1 > $d/enable; echo "IVSHMEM $d"; fi
done
/bin/evprint &    # input events on the serial console (EV dev type code value), as the test guest prints them
echo "AGENT starting"
for arg in $(cat /proc/cmdline); do case "$arg" in agentcmd=*) cmd="${arg#agentcmd=}";; esac; done
chroot /host /bin/sh -c "$(echo $cmd | tr '+' ' ')"
echo "AGENT exited $?"
poweroff -f
