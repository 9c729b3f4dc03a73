"""Frame sources for the guest agent. Each yields what to write for a frame; the agent posts it."""
