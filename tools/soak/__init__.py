"""The soak harness behind ``scripts/soak.sh`` (issue 12 items 4 and 5): a vandal that scribbles on live
shared memory, and restart soaks of the agent, a reader, QEMU's SPICE server and PulseAudio.

It drives the programs as users run them (``kvmfr-agent``, ``kvmfr-view`` window and ``--headless``,
``kvmfr_client.open`` in a child) and judges them from outside: exit codes, /proc RSS, the barcode the
window shows, frame lines the API reader prints. It is not part of the installed package.
"""
