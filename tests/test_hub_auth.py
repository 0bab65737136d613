"""hub_errors recognises network failures without importing the Hub client's transport.

Real sockets and two transports it never imports (urllib, and an exception class standing
for httpx's, raised from the socket error as every transport does): the message must say
"cannot reach the Hub" for those, name a local file error as such, and let a bug through.
"""

from __future__ import annotations

import errno
import socket
import urllib.request

import pytest

from glacier.errors import HubError
from glacier.hub.auth import hub_errors, network_failure


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_refused_connection_is_cannot_reach_the_hub():
    url = f"http://127.0.0.1:{_closed_port()}/api/models/alice/x"
    expected = r"cannot pull 'alice/x': cannot reach the Hub .*; run it again$"
    with pytest.raises(HubError, match=expected), hub_errors("alice/x", "pull", retry_hint="run it again"):
        urllib.request.urlopen(url, timeout=5)


def test_a_server_that_never_answers_is_cannot_reach_the_hub():
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        url = f"http://127.0.0.1:{server.getsockname()[1]}/"
        with pytest.raises(HubError, match="cannot reach the Hub"), hub_errors("alice/x", "push to"):
            urllib.request.urlopen(url, timeout=0.3)


class ConnectError(Exception):
    """Stands for httpx.ConnectError: not an OSError, raised from the socket's error."""


def test_a_transport_error_raised_from_a_socket_error_is_recognised():
    try:
        try:
            socket.create_connection(("127.0.0.1", _closed_port()), timeout=5)
        except OSError as exc:
            raise ConnectError("[Errno 111] Connection refused") from exc
    except ConnectError as exc:
        assert isinstance(network_failure(exc), ConnectionRefusedError)
        wrapped = exc
    expected = r"cannot reach the Hub .*\(ConnectError: \[Errno 111\]"
    with pytest.raises(HubError, match=expected), hub_errors("alice/x", "pull"):
        raise wrapped


def test_a_local_file_error_is_named_as_such_not_as_the_network():
    with pytest.raises(HubError) as info, hub_errors("alice/x", "pull"):
        raise OSError(errno.ENOSPC, "No space left on device", "/kaggle/working/x")
    assert "No space left on device" in str(info.value) and "/kaggle/working/x" in str(info.value)
    assert "cannot reach" not in str(info.value)


def test_a_bug_is_not_disguised():
    with pytest.raises(KeyError), hub_errors("alice/x", "pull"):
        raise KeyError("a bug")
    assert network_failure(KeyError("a bug")) is None
