"""The CLI's line to a running server on the same node: "refresh what changed", then wait.

A command such as ``appliance model use`` commits its event through the store as always (the
stored event stays the source of truth; replication and the server's own polling remain the
backstop). It then asks the server running on this data directory to reload what the change
touched, and waits for the answer, so the change is in effect when the command returns.

The channel is a Unix socket, never a TCP port: visitors and other hosts cannot reach it. Its
path and the server's pid are in ``serve.json`` in the data directory; the socket is created
mode 0600 (in the data directory, or in a private 0700 temporary directory when that path is
too long for a socket) and the server answers only a peer of its own user (or root), checked
with ``SO_PEERCRED``. One request per connection, one JSON line each way.
"""

from appliance.control.channel import RUNTIME_FILE, TOPICS, ControlServer, Outcome, Topic, tell_server

__all__ = ["RUNTIME_FILE", "TOPICS", "ControlServer", "Outcome", "Topic", "tell_server"]
