"""The live desk: conversations and their owner, handoff, assignment and the queue, presence,
the live hub, tickets and notes. The web layer and (later) sync both use these services."""
