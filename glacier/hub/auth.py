"""Hub authentication and failures, in one place.

The token comes the standard way: ``HF_TOKEN`` or a saved ``hf auth login``, both read by
huggingface_hub itself; glacier never takes it as an argument, stores it or prints it.
Every Hub call runs inside ``hub_errors``, which turns huggingface_hub's exceptions
(``huggingface_hub.errors``) and network failures into one ``HubError`` saying which repo,
what happened and what to do, with the token scrubbed from the message in case a server
echoed it. The Hub client's HTTP transport is never imported: it changed between releases
(requests, httpx, httpx2), so a network failure is recognised by the socket-level error
(refused, reset, timed out, unresolved, TLS) in its chain of causes, which every transport
keeps.
"""

from __future__ import annotations

import contextlib
import json
import socket
import ssl
from collections.abc import Iterator

from glacier.errors import HubError

LOGIN_HINT = (
    "set HF_TOKEN to a valid token (write access to push; https://huggingface.co/settings/tokens) "
    "or run `hf auth login`"
)


def current_token() -> str | None:
    """The token huggingface_hub will send (HF_TOKEN or the saved login), or None."""
    from huggingface_hub import get_token

    return get_token()


def require_token(repo_id: str, action: str) -> None:
    """Fail before any upload when no token is configured at all."""
    if not current_token():
        raise HubError(f"cannot {action} {repo_id!r}: not logged in to the Hugging Face Hub; {LOGIN_HINT}")


def check_repo_id(repo_id: str) -> None:
    """A HubError unless ``repo_id`` is a valid Hub repo id (checked before any request)."""
    from huggingface_hub.errors import HFValidationError
    from huggingface_hub.utils import validate_repo_id

    try:
        validate_repo_id(repo_id)
    except HFValidationError as exc:
        raise HubError(f"{repo_id!r} is not a valid Hub repo id (USER/NAME): {exc}") from None


def redact(text: str) -> str:
    """``text`` with the current token (if any) replaced by ``***``."""
    token = current_token()
    return text.replace(token, "***") if token else text


def endpoint() -> str:
    from huggingface_hub import constants

    return constants.ENDPOINT


# Socket-level failures: what requests, httpx and httpx2 errors are raised from.
_NETWORK_ERRORS = (ConnectionError, TimeoutError, socket.gaierror, ssl.SSLError)


@contextlib.contextmanager
def hub_errors(repo_id: str, action: str, *, retry_hint: str = "") -> Iterator[None]:
    """Turn Hub client exceptions raised inside the block into a clear ``HubError``.

    ``action`` completes "cannot ACTION REPO" (e.g. "push to", "pull"); ``retry_hint``
    is appended to failures worth retrying (network, server errors).
    """
    retry = f"; {retry_hint}" if retry_hint else ""
    where = f"cannot {action} {repo_id!r}"
    try:
        yield
    except HubError:
        raise
    except Exception as exc:
        message = _client_failure(exc, where, retry) or _transport_failure(exc, where, retry)
        if message is None:
            raise
        raise HubError(message) from None


def _client_failure(exc: Exception, where: str, retry: str) -> str | None:
    """The message for an error huggingface_hub raises about the repo or its files, or None.

    Most specific first: in huggingface_hub the HTTP errors, the offline error and the "not
    in the cache" error are all OSErrors too.
    """
    from huggingface_hub import errors as hf

    if isinstance(exc, hf.OfflineModeIsEnabled):
        return f"{where}: HF_HUB_OFFLINE is set, so the Hub is not contacted; unset it (HF_HUB_OFFLINE=0) to go online"
    if isinstance(exc, hf.RevisionNotFoundError):
        return f"{where}: the revision does not exist on the Hub; check the branch, tag or commit"
    if isinstance(exc, hf.GatedRepoError):
        return f"{where}: the repo is gated; request access on its Hub page, then retry"
    if isinstance(exc, hf.RepositoryNotFoundError):
        return (
            f"{where}: repo not found on {endpoint()} (or it is private and your token cannot see it); "
            f"check the id (USER/NAME) and {LOGIN_HINT}"
        )
    if isinstance(exc, hf.LocalEntryNotFoundError):
        # snapshot_download's "not online and not in the cache": online, the server may
        # have answered (an HTTP 500 is not "cannot be reached").
        answered = _http_cause(exc)
        if answered is not None:
            return _http_message(where, answered, " and the repo is not in the local cache" + retry)
        return (
            f"{where}: the Hub cannot be reached and the repo is not in the local cache "
            f"({redact(_first_line(exc))}); go online once to pull it{retry}"
        )
    if isinstance(exc, hf.EntryNotFoundError):
        return f"{where}: a file is missing on the Hub ({redact(_first_line(exc))}){retry}"
    if isinstance(exc, hf.HfHubHTTPError):
        return _http_message(where, exc, retry)
    return None


def _transport_failure(exc: Exception, where: str, retry: str) -> str | None:
    """The message for a failed upload, a non-JSON answer, a rejected card, an unreachable
    Hub or another OSError; None for anything else (a bug: let it raise)."""
    if isinstance(exc, RuntimeError):
        # huggingface_hub wraps a failed LFS upload in a RuntimeError naming the file.
        cause = exc.__cause__ or exc
        return f"{where}: upload failed ({redact(str(exc))}: {redact(_first_line(cause))}){retry}"
    if isinstance(exc, json.JSONDecodeError):
        return (
            f"{where}: the server at {endpoint()} answered something that is not JSON ({exc}; "
            f"is HF_ENDPOINT a Hugging Face Hub?){retry}"
        )
    if isinstance(exc, ValueError):
        if "Invalid metadata in README.md" in str(exc):
            return f"{where}: the Hub rejected the model card's metadata: {redact(str(exc))}"
        return None
    if network_failure(exc) is not None:
        return (
            f"{where}: cannot reach the Hub at {endpoint()} ({type(exc).__name__}: {redact(str(exc))}); "
            f"check the network connection or HF_ENDPOINT{retry}"
        )
    if isinstance(exc, OSError):
        return f"{where}: {redact(str(exc))}"
    return None


def network_failure(exc: BaseException) -> BaseException | None:
    """The socket-level error behind ``exc`` (``exc`` itself or one of its causes), or None."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, _NETWORK_ERRORS):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None


def _http_cause(exc: BaseException):
    """The HTTP error (an answer of the server) in ``exc``'s chain of causes, or None."""
    from huggingface_hub.errors import HfHubHTTPError

    current = exc.__cause__ or exc.__context__
    while current is not None and not isinstance(current, HfHubHTTPError):
        current = current.__cause__ or current.__context__
    return current


def _http_message(where: str, exc, retry: str) -> str:
    status = exc.response.status_code if exc.response is not None else None
    detail = redact(getattr(exc, "server_message", None) or _first_line(exc))
    if status == 401:
        return f"{where}: the Hub rejected the token (401 Unauthorized: {detail}); {LOGIN_HINT}"
    if status == 403:
        return f"{where}: the token may not write to this repo (403 Forbidden: {detail}); use a token with write access to its namespace"
    if status == 409:
        return f"{where}: conflict on the Hub (409: {detail}){retry}"
    return f"{where}: the server at {endpoint()} answered HTTP {status} ({detail}){retry}"


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
