"""The hub/node protocol: node identity, signed requests, sealed results, tasks, transport,
the institution registry and the node agent."""
