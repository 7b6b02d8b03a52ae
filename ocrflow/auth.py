"""OAuth client-credentials auth for httpx: one cached token, renewed early, once on a 401.

The vendor bans a client after more than 5 failed token requests (contract §5), so a rejected
credential is never retried in a loop: it fails at once, and token requests stay blocked for a
cool-down. A 429 from the token endpoint is honoured: a short ``Retry-After`` is waited out
once, a long one blocks token requests until it has passed.
"""

from __future__ import annotations

import asyncio
import json
import math
import time
import weakref
from collections.abc import AsyncGenerator, Awaitable, Callable, Generator

import httpx
from pydantic import SecretStr

from ocrflow.backoff import parse_retry_after
from ocrflow.errors import ApiError, AuthError, ResponseFormatError

DEFAULT_EXPIRES_IN_S = 3600.0  # every documented token lives an hour
DEFAULT_TOKEN_RETRY_AFTER_S = 60.0
_REJECTED = {400, 401, 403}


class ClientCredentialsAuth(httpx.Auth):
    """Bearer auth that fetches its token with ``grant_type=client_credentials``.

    Async only. One token request serves every concurrent caller on an event loop (an
    ``asyncio.Lock`` per loop); the token is renewed ``renew_margin_s`` before it expires (or
    at half its life, for short-lived tokens) and once more when a request comes back 401,
    which is then replayed once.
    """

    def __init__(
        self,
        token_url: str,
        client_id: str,
        client_secret: SecretStr | str,
        *,
        renew_margin_s: float = 300.0,
        rejected_cooldown_s: float = 60.0,
        max_token_wait_s: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
    ) -> None:
        self._token_url = token_url
        self._client_id = client_id
        self._secret = (
            client_secret if isinstance(client_secret, SecretStr) else SecretStr(client_secret)
        )
        self._renew_margin_s = renew_margin_s
        self._rejected_cooldown_s = rejected_cooldown_s
        self._max_token_wait_s = max_token_wait_s
        self._clock = clock
        self._sleep = sleep
        self._token: str | None = None
        self._renew_at = -math.inf
        self._blocked_until = -math.inf
        self._block_reason: AuthError | None = None
        self._locks: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = (
            weakref.WeakKeyDictionary()
        )
        self.token_requests = 0  # how many token requests were sent, for tests and metrics

    def __repr__(self) -> str:
        return f"ClientCredentialsAuth(token_url={self._token_url!r}, client_id={self._shown_id})"

    @property
    def _shown_id(self) -> str:
        # The id is not secret, but shown in part: enough to tell two credentials apart.
        return f"'{self._client_id[:8]}…'" if len(self._client_id) > 8 else repr(self._client_id)

    def sync_auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response]:
        raise RuntimeError("ClientCredentialsAuth is async-only: use it with httpx.AsyncClient")

    async def async_auth_flow(
        self, request: httpx.Request
    ) -> AsyncGenerator[httpx.Request, httpx.Response]:
        used: str | None = None
        for replay in (False, True):
            async with self._lock():
                if replay and self._token == used:
                    self._token = None  # nobody renewed it while we waited: renew now
                if self._token is None or self._clock() >= self._renew_at:
                    self._raise_if_blocked()
                    waited = False
                    while True:
                        token_response = yield self._token_request()
                        # This flow replaces httpx's own, which would have read the body.
                        await token_response.aread()
                        wait_s = self._accept(token_response, may_wait=not waited)
                        if wait_s is None:
                            break
                        waited = True
                        await self._sleep(wait_s)
                used = self._token
            request.headers["Authorization"] = f"Bearer {used}"
            response = yield request
            if response.status_code != 401:
                return

    async def verify(self, http: httpx.AsyncClient) -> None:
        """Ask for a token now, once, and keep it: AuthError when the credentials are refused
        or the endpoint is banning them, ApiError when it is failing (5xx)."""
        async with self._lock():
            self._raise_if_blocked()
            response = await http.send(self._token_request(), auth=None)
            self._accept(response, may_wait=False)

    def invalidate(self) -> None:
        """Forget the cached token, so the next request fetches a new one."""
        self._token = None

    def _lock(self) -> asyncio.Lock:
        loop = asyncio.get_running_loop()
        lock = self._locks.get(loop)
        if lock is None:
            lock = self._locks[loop] = asyncio.Lock()
        return lock

    def _raise_if_blocked(self) -> None:
        if self._block_reason is not None and self._clock() < self._blocked_until:
            raise self._block_reason

    def _token_request(self) -> httpx.Request:
        self.token_requests += 1
        return httpx.Request(
            "POST",
            self._token_url,
            data={
                "grant_type": "client_credentials",
                "client_id": self._client_id,
                "client_secret": self._secret.get_secret_value(),
            },
            headers={"Accept": "application/json"},
        )

    def _accept(self, response: httpx.Response, *, may_wait: bool) -> float | None:
        """Take a token answer: store the token (None), ask for a wait (seconds), or raise."""
        status = response.status_code
        body = response.text
        if status == 200:
            self._store(body)
            return None
        if status in _REJECTED:
            error = _oauth_error(body) or f"HTTP {status}"
            reason = AuthError(
                f"the token endpoint rejected the credentials of client id {self._shown_id} "
                f"({error}); check OCRFLOW_CLIENT_ID and OCRFLOW_CLIENT_SECRET. No new token "
                f"request for {self._rejected_cooldown_s:.0f} s: the service bans a client "
                "after 5 failed token requests",
                status_code=status,
                body=body,
                retry_after_s=self._rejected_cooldown_s,
            )
            self._block(reason, self._rejected_cooldown_s)
            raise reason
        if status == 429:
            retry_after_s = parse_retry_after(response.headers.get("Retry-After"))
            wait_s = DEFAULT_TOKEN_RETRY_AFTER_S if retry_after_s is None else retry_after_s
            if may_wait and wait_s <= self._max_token_wait_s:
                return wait_s
            reason = AuthError(
                f"the token endpoint is rate-limiting client id {self._shown_id}: "
                f"retry after {wait_s:.0f} s",
                status_code=status,
                body=body,
                retry_after_s=wait_s,
            )
            self._block(reason, wait_s)
            raise reason
        # 5xx and the like: not a credential failure, and worth another try later.
        raise ApiError(f"the token endpoint answered HTTP {status}", status_code=status, body=body)

    def _store(self, body: str) -> None:
        try:
            payload = json.loads(body)
            token = payload["access_token"]
            expires_in = float(payload.get("expires_in") or DEFAULT_EXPIRES_IN_S)
            token_type = str(payload.get("token_type") or "Bearer")
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise ResponseFormatError(
                "the token endpoint answered 200 without a usable access_token",
                status_code=200,
            ) from exc
        if not isinstance(token, str) or not token or token_type.lower() != "bearer":
            raise ResponseFormatError(
                "the token endpoint answered 200 without a bearer access_token", status_code=200
            )
        # Renew a margin before expiry, or at half-life for tokens shorter than two margins.
        lifetime_s = max(expires_in, 0.0)
        self._renew_at = self._clock() + max(lifetime_s - self._renew_margin_s, lifetime_s / 2)
        self._token = token
        self._block_reason = None

    def _block(self, reason: AuthError, seconds: float) -> None:
        self._token = None
        self._block_reason = reason
        self._blocked_until = self._clock() + seconds


_DESCRIPTION_CHARS = 200  # a server's reason is shown, a page of HTML posing as one is not


def _oauth_error(body: str) -> str | None:
    """The ``error`` code of an OAuth error body (``invalid_client``…), with its
    ``error_description`` when the server gives one; None when there is no code."""
    try:
        payload = json.loads(body)
    except ValueError:
        return None
    if not isinstance(payload, dict) or not isinstance(payload.get("error"), str):
        return None
    error: str = payload["error"]
    description = payload.get("error_description")
    if isinstance(description, str) and description.strip():
        shown = " ".join(description.split())
        error += f": {shown[:_DESCRIPTION_CHARS]}{'…' if len(shown) > _DESCRIPTION_CHARS else ''}"
    return error
