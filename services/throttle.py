"""How fast passwords may be guessed and accounts made: per account and per address, on the injected clock."""

from domain.errors import RateLimited
from realtime.ratelimit import KeyedBuckets, retry_after

__all__ = ["SignInThrottle"]


class SignInThrottle:
    """Owns the allowances of logging in and signing up.

    An account takes `wrong_passwords` wrong passwords, then one more every `wrong_password_refill_s`: a try
    counts as wrong from the moment it starts until its hash says otherwise, so guesses sent in parallel cannot
    outrun the count, and a right password gives its try back. An address (a whole class behind one NAT is one
    address) gets a burst of logins and of new accounts that a class needs at the start of a lesson and a
    script soon runs out of.
    """

    def __init__(self, clock, *, wrong_passwords: int = 5, wrong_password_refill_s: float = 12.0,
                 logins_per_s: float = 1.0, login_burst: int = 60, sign_ups_per_minute: float = 30.0):
        self._wrong = KeyedBuckets(rate=1 / wrong_password_refill_s, burst=wrong_passwords, clock=clock)
        self._logins = KeyedBuckets(rate=logins_per_s, burst=login_burst, clock=clock)
        self._sign_ups = KeyedBuckets(rate=sign_ups_per_minute / 60, burst=max(1, round(2 * sign_ups_per_minute)),
                                      clock=clock)

    def login_started(self, username: str, address: str) -> None:
        """Before checking a password: RateLimited when the address or the account has no try left."""
        _take(self._logins.bucket(address), "too many logins from this address")
        _take(self._wrong.bucket(username.casefold()), "too many wrong passwords for this account")

    def login_succeeded(self, username: str) -> None:
        self._wrong.bucket(username.casefold()).refund()

    def sign_up(self, address: str) -> None:
        """Before making an account (register or guest): RateLimited past this address's allowance."""
        _take(self._sign_ups.bucket(address), "too many new accounts from this address")


def _take(bucket, message: str) -> None:
    if not bucket.allow():
        wait = bucket.wait_s()
        raise RateLimited(f"{message}; try again in {retry_after(wait)} s", wait)
