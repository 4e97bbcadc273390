"""The wire: the one contract between probe, daemon and clients.

Everything that crosses a process is built and checked in this package:

* :mod:`grokwatch.wire.frames`   probe -> daemon frames and records, the
  daemon's acks, and the msgpack envelope of client messages;
* :mod:`grokwatch.wire.messages` daemon <-> client messages (snapshot,
  updates, run summaries, alerts, hook events, requests and replies);
* :mod:`grokwatch.wire.names`    the shared vocabulary: metric names, phases,
  alert kinds, default endpoints, environment variable names.

The public names of all three are re-exported here, so ``from grokwatch
import wire; wire.decode_frame(...)`` works; the submodules may be imported
on their own too.
"""

from grokwatch.wire import messages, names
from grokwatch.wire.frames import (
    BYE,
    CLIENT_MAX_MSG,
    CODE_KINDS,
    DEFAULT_MAX_FRAME,
    DTYPES,
    HELLO,
    KIND_CODES,
    KINDS,
    MAX_ARRAY_ELEMS,
    MAX_CONFIG_BYTES,
    MAX_DEPTH,
    MAX_INT,
    MAX_NAME_LEN,
    MAX_NDIM,
    MAX_RECORDS,
    MAX_RUN_LEN,
    MAX_SCALARS,
    POINTS,
    REASONS,
    SCALARS,
    SPECTRUM,
    VERSION,
    Frame,
    Record,
    WireError,
    array_to_list,
    bye,
    check_array,
    decode_ack,
    decode_frame,
    decode_msg,
    encode_ack,
    encode_frame,
    encode_msg,
    hello,
    pack_array,
    points,
    scalars,
    spectrum,
    unpack_array,
    valid_run_id,
)
from grokwatch.wire.messages import CLIENT_OPS, UPDATE_TOPICS
from grokwatch.wire.names import (
    ALERT_KINDS,
    API_ENV,
    DEFAULT_API,
    DEFAULT_INGEST,
    DEFAULT_PUB,
    ENDPOINT_ENV,
    PHASES,
    PUB_ENV,
)

__all__ = [
    "ALERT_KINDS", "API_ENV", "BYE", "CLIENT_MAX_MSG", "CLIENT_OPS", "UPDATE_TOPICS", "CODE_KINDS", "DEFAULT_API",
    "DEFAULT_INGEST", "DEFAULT_MAX_FRAME", "DEFAULT_PUB", "DTYPES", "ENDPOINT_ENV", "HELLO",
    "KIND_CODES", "KINDS", "MAX_ARRAY_ELEMS", "MAX_CONFIG_BYTES", "MAX_DEPTH", "MAX_INT",
    "MAX_NAME_LEN", "MAX_NDIM", "MAX_RECORDS", "MAX_RUN_LEN", "MAX_SCALARS", "PHASES", "POINTS",
    "PUB_ENV", "REASONS", "SCALARS", "SPECTRUM", "VERSION", "Frame", "Record", "WireError",
    "array_to_list", "bye", "check_array", "decode_ack", "decode_frame", "decode_msg", "encode_ack",
    "encode_frame", "encode_msg", "hello", "messages", "names", "pack_array", "points", "scalars", "spectrum",
    "unpack_array", "valid_run_id",
]
