"""``kvmfr-vm``: a VM described in one YAML file (:mod:`.spec`), checked against this host (:mod:`.host`),
turned into a QEMU command line (:mod:`.command`) and run, asked and stopped through QMP (:mod:`.runtime`).

Uses :mod:`kvmfr_client.core` only for Looking Glass's shared-memory size rule; never the viewer's internals
(it starts ``kvmfr-view`` as a program)."""
