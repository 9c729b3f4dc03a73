"""The reader core, the bottom layer: the native LGMP/KVMFR binding, the session that reads frames and
cursor updates from the shared memory, still snapshots, frame formats, cursor types and errors.

Nothing here imports from the rest of the package; the viewer, input, SPICE, audio and the guest agent
build on it.
"""
