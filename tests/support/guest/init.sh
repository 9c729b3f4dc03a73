# PID 1 of the test guest, after kvmfr_client/vm/guest_image.py's INIT_BOOT (kernel file systems, the modules
# of /modules.list and /modules-more.list): print input events on the serial line. Kernel parameter
# agenttext=TEXT also starts the stand-in SPICE agent with TEXT as the guest clipboard; the programs an
# appended cpio puts in /init.d (the mic guest's micrec) start too.
echo "INIT modules loaded"
for arg in $(cat /proc/cmdline); do
    case "$arg" in
        agenttext=*) fakeagent "${arg#agenttext=}" & ;;
    esac
done
for program in /init.d/*; do [ -x "$program" ] && "$program" & done
exec /bin/evprint
