# The agent guest's sound (run chrooted in the host's tree, as root, with a read-only root): a PulseAudio of
# its own with a null sink that module-sine plays a 440 Hz tone into, and our Scream sender recording its
# monitor into the Scream IVSHMEM device (kvmfr-vm puts it at 00:0f.0). $1: the project's Python.
mkdir -p /dev/shm/home /dev/shm/run   # /dev is the guest's devtmpfs: the one writable place
export HOME=/dev/shm/home XDG_RUNTIME_DIR=/dev/shm/run
pulseaudio -n --daemonize=no --exit-idle-time=-1 --disable-shm=yes --use-pid-file=no --log-level=error \
  -L "module-null-sink sink_name=guest rate=48000" \
  -L "module-native-protocol-unix auth-anonymous=1 socket=/dev/shm/run/pa.sock" \
  -L "module-sine sink=guest frequency=440" &
i=0
while [ ! -S /dev/shm/run/pa.sock ] && [ $i -lt 150 ]; do sleep 0.2; i=$((i+1)); done
echo "GUEST PULSE ready"
exec "$1" -m guest_agent.audio --ivshmem /sys/bus/pci/devices/0000:00:0f.0/resource2 --source guest.monitor \
  --server unix:/dev/shm/run/pa.sock
