"""What can go wrong when site code asks for a provider's API, and what to do about it."""

from __future__ import annotations


class CustodianError(Exception):
    """Base class of every error the public API raises."""


class NotConnected(CustodianError):
    """The user has no (matching) account of that provider: offer them to connect one."""

    def __init__(self, provider: str, message: str | None = None) -> None:
        self.provider = provider
        super().__init__(message or f"The user has no connected {provider} account")


class MultipleAccounts(NotConnected):
    """The user has several accounts of that provider and no `uid` chose one."""

    def __init__(self, provider: str, uids: list[str]) -> None:
        self.uids = uids
        super().__init__(
            provider,
            f"The user has {len(uids)} {provider} accounts ({', '.join(uids)}); "
            "pass uid= to choose one",
        )


class ReauthRequired(CustodianError):
    """The provider no longer accepts the grant: the user must reconnect (log in again)."""

    def __init__(self, provider: str, uid: str, reason: str = "") -> None:
        self.provider = provider
        self.uid = uid
        self.reason = reason
        super().__init__(
            f"The {provider} account {uid} must be reconnected"
            + (f" ({reason})" if reason else "")
        )


class RefreshFailed(CustodianError):
    """Refreshing failed for a passing reason (provider down, timeout, garbage, 429).

    The stored credentials are unchanged; try again later. `cause` is a short code
    (social-core's error code, e.g. "unavailable", "timeout", "malformed_response") and
    `__cause__` the original exception.
    """

    def __init__(self, provider: str, uid: str, cause: str) -> None:
        self.provider = provider
        self.uid = uid
        self.cause = cause
        super().__init__(f"Refreshing the {provider} token of {uid} failed: {cause}")


class AwaitingApproval(CustodianError):
    """The user connected but has not yet approved access in the provider's app (Monzo's
    Strong Customer Authentication): ask them to open the app and approve, then check again."""

    def __init__(self, provider: str, uid: str) -> None:
        self.provider = provider
        self.uid = uid
        super().__init__(
            f"The {provider} account {uid} is waiting for the user to approve access in the "
            f"{provider} app"
        )


class CredentialsUnreadable(ReauthRequired):
    """The stored credentials cannot be decrypted with the keys in CUSTODIAN_ENCRYPTION_KEYS.

    The user must reconnect (a new login overwrites them), unless an operator restores the
    missing key. The stored row is left as it is, so restoring the key brings it back.
    """

    def __init__(self, provider: str, uid: str) -> None:
        super().__init__(provider, uid, "credentials_unreadable")


class ProviderNotOffered(CustodianError):
    """The association's provider is no longer enabled on this site (removed from settings).

    Its API cannot be called and its grant cannot be refreshed or revoked from here; the user
    can still disconnect the association.
    """

    def __init__(self, provider: str) -> None:
        self.provider = provider
        super().__init__(f"The {provider} provider is no longer offered on this site")


class ForeignHostRefused(CustodianError, ValueError):
    """A request through get_session would have taken the token to a host that may not have it.

    Only the provider's API base and the hosts it declares (`api_hosts`) receive its token;
    ambiguous URLs (control characters, backslashes, user info...) are refused too. Nothing
    was sent. The message names the host, never the URL's path or query.
    """

    def __init__(self, provider: str, why: str) -> None:
        self.provider = provider
        super().__init__(f"Refusing to send the {provider} token to that URL: {why}")
