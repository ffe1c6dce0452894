"""pointstream for Python: send NumPy point clouds to a pointstream server over WebRTC (aiortc),
and read a stream's live frames over HTTP. See docs/python.md.

>>> import numpy as np, pointstream
>>> with pointstream.connect("http://localhost:8080", stream="lidar") as client:
...     receipt = client.send(np.random.rand(1000, 3))
>>> points, meta = pointstream.latest("http://localhost:8080", "lidar")
"""

try:
    import aiortc  # noqa: F401
    import numpy  # noqa: F401
except ImportError as missing:  # pragma: no cover - depends on the machine
    raise ImportError(
        f"pointstream needs NumPy and aiortc ({missing}): on Debian apt-get install python3-numpy "
        "python3-aiortc; elsewhere pip install numpy aiortc"
    ) from missing

from .aio import AsyncClient, Options, Receipt, Stats
from .client import Client, Sent, connect
from .errors import ErrorCodes, PointstreamError
from .live import LiveFrame, frames, latest

__version__ = "0.2.0"

__all__ = [
    "AsyncClient",
    "Client",
    "ErrorCodes",
    "LiveFrame",
    "Options",
    "PointstreamError",
    "Receipt",
    "Sent",
    "Stats",
    "connect",
    "frames",
    "latest",
]
