"""The emulator's token endpoint logic: issue JWT-like bearer tokens, check them, ban abusers."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import math
import secrets
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from ocrflow.emulator.settings import EmulatorSettings


@dataclass(frozen=True, slots=True)
class TokenAnswer:
    """What the token endpoint answers: status, JSON body, extra headers."""

    status: int
    body: dict[str, object]
    headers: dict[str, str]


class TokenIssuer:
    """Issues and checks tokens; counts failed requests per credential pair and bans (§5)."""

    def __init__(self, settings: EmulatorSettings, clock: Callable[[], float]) -> None:
        self._settings = settings
        self._clock = clock
        self._key = secrets.token_bytes(32)
        self._tokens: dict[str, float] = {}  # token → expiry on the emulator's clock
        self._failures: dict[str, int] = {}
        self._banned_until: dict[str, float] = {}
        self._lock = threading.Lock()
        self.issued = 0

    def issue(
        self, client_id: str | None, client_secret: str | None, grant_type: str | None
    ) -> TokenAnswer:
        """Answer one token request."""
        pair = hashlib.sha256(f"{client_id}\0{client_secret}".encode()).hexdigest()
        now = self._clock()
        with self._lock:
            banned_until = self._banned_until.get(pair, -math.inf)
            if now < banned_until:
                wait = math.ceil(banned_until - now)
                return TokenAnswer(429, {"error": "too_many_requests"}, {"Retry-After": str(wait)})
            if not grant_type:
                body: dict[str, object] = {
                    "error": "invalid_request",
                    "error_description": "grant_type is required",
                }
                return TokenAnswer(400, body, {})
            if grant_type != "client_credentials":
                return TokenAnswer(400, {"error": "unsupported_grant_type"}, {})
            if not self._valid(client_id, client_secret):
                failures = self._failures[pair] = self._failures.get(pair, 0) + 1
                if failures > self._settings.token_ban_after:
                    self._banned_until[pair] = now + self._settings.token_ban_s
                return TokenAnswer(400, {"error": "invalid_client"}, {})
            self._failures.pop(pair, None)
            lifetime = self._settings.token_lifetime_s
            token = self._mint(str(client_id), lifetime)
            self._purge(now)
            self._tokens[token] = now + lifetime
            self.issued += 1
        return TokenAnswer(
            200,
            {"access_token": token, "expires_in": int(lifetime), "token_type": "Bearer"},
            {"Cache-Control": "no-store"},
        )

    def check(self, authorization: str | None) -> str | None:
        """None when the bearer token is good, else the reason to put in WWW-Authenticate."""
        if not authorization or not authorization.lower().startswith("bearer "):
            return "missing"
        token = authorization[7:].strip()
        with self._lock:
            expires = self._tokens.get(token)
            if expires is None:
                return "invalid"
            if self._clock() >= expires:
                del self._tokens[token]
                return "expired"
        return None

    def revoke(self, authorization: str | None) -> None:
        """Make a token expire now (the early-expiry fault)."""
        if authorization and authorization.lower().startswith("bearer "):
            with self._lock:
                self._tokens.pop(authorization[7:].strip(), None)

    def _valid(self, client_id: str | None, client_secret: str | None) -> bool:
        expected_secret = self._settings.client_secret.get_secret_value()
        return (
            client_id is not None
            and client_secret is not None
            and hmac.compare_digest(client_id, self._settings.client_id)
            and hmac.compare_digest(client_secret, expected_secret)
        )

    def _mint(self, client_id: str, lifetime: float) -> str:
        def part(payload: dict[str, object]) -> str:
            raw = json.dumps(payload, separators=(",", ":")).encode()
            return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

        header = part({"alg": "HS256", "typ": "JWT"})
        body = part({"client_id": client_id, "jti": str(uuid.uuid4()), "lifetime": lifetime})
        signature = hmac.new(self._key, f"{header}.{body}".encode(), hashlib.sha256).digest()
        return f"{header}.{body}.{base64.urlsafe_b64encode(signature).rstrip(b'=').decode()}"

    def _purge(self, now: float) -> None:
        if len(self._tokens) > 10_000:
            self._tokens = {t: e for t, e in self._tokens.items() if e > now}
