"""How a node talks to the hub: the :class:`NodeTransport` contract, the hub-side
:class:`HubEndpoint`, and in-process and HTTP transports."""

from healthmesh.federation.transport.base import (
    PREFIX,
    ForgedResponse,
    NodeTransport,
    TransportError,
)
from healthmesh.federation.transport.endpoint import HubEndpoint, OnPublish
from healthmesh.federation.transport.http import HttpTransport
from healthmesh.federation.transport.inprocess import InProcessTransport

__all__ = [
    "PREFIX",
    "ForgedResponse",
    "HttpTransport",
    "HubEndpoint",
    "InProcessTransport",
    "NodeTransport",
    "OnPublish",
    "TransportError",
]
