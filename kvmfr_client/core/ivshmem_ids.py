"""How each IVSHMEM device of a ``kvmfr-vm`` VM is told apart, on the host and inside the guest.

Every IVSHMEM device is PCI 1af4:1110, so in the guest only something the host chose can tell display 0 from
display 1 and from Scream. ``kvmfr-vm`` gives each device a label through an SMBIOS type 41 (onboard device)
record naming it by its QEMU id: Linux shows it as ``/sys/bus/pci/devices/<addr>/label`` (Windows reads the
same table). The guest agent (``guest_agent.device``) picks its device by that label, never by order. Each
device also sits at a fixed slot (display n at 00:1n.0, Scream at 00:0f.0) so ``lspci`` reads the same in
every boot, and the QEMU ids name them on the host (QMP ``qom-list``).

In the reader core, not in ``kvmfr_client.vm``, because the guest agent imports these names too (it must not
depend on the host's VM manager). Standard library only.
"""

from __future__ import annotations

IVSHMEM_VENDOR = 0x1AF4
IVSHMEM_DEVICE = 0x1110
MAX_DISPLAYS = 8             # displays 0..7 per VM: slots 0x10..0x17
DISPLAY_SLOT = 0x10          # display n at 00:1n.0 (n < MAX_DISPLAYS)
SCREAM_SLOT = 0x0F
LABEL_PREFIX = "kvmfr-"
SCREAM_LABEL = "kvmfr-scream"
# Scream's IVSHMEM ring (its docs: 2 MB). The one size rule that tells the devices apart without labels: a
# display's memory is larger than this, Scream's is at most this.
SCREAM_IVSHMEM_SIZE = 2 << 20


def display_label(n: int) -> str:
    """The SMBIOS / sysfs label of display n's IVSHMEM device."""
    return f"{LABEL_PREFIX}display-{n}"


def smbios_label(label: str, device_id: str, instance: int) -> list[str]:
    """QEMU arguments for an SMBIOS type 41 record that labels the PCI device with QEMU id ``device_id``."""
    return ["-smbios", f"type=41,designation={label},kind=other,instance={instance},pcidev={device_id}"]
