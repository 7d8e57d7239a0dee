"""Money: an immutable Decimal amount with its ISO 4217 currency.

Amounts from Amazon arrive as decimal strings and are kept exactly; arithmetic refuses to mix
currencies. Rounding is never implicit: ``quantize`` names the rule.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from caturactl.core.errors import InputError

CENT = Decimal("0.01")


@dataclass(frozen=True, slots=True)
class Money:
    amount: Decimal
    currency: str

    def __post_init__(self) -> None:
        if not isinstance(self.amount, Decimal):
            raise TypeError(f"Money amount must be Decimal, not {type(self.amount).__name__}")
        if len(self.currency) != 3 or not self.currency.isalpha() or not self.currency.isupper():
            raise InputError(f"not an ISO 4217 currency code: {self.currency!r}")

    @classmethod
    def zero(cls, currency: str) -> "Money":
        return cls(Decimal(0), currency)

    def _same(self, other: "Money") -> None:
        if not isinstance(other, Money):
            raise TypeError(f"cannot combine Money with {type(other).__name__}")
        if other.currency != self.currency:
            raise ValueError(f"currency mismatch: {self.currency} and {other.currency}")

    def __add__(self, other: "Money") -> "Money":
        self._same(other)
        return Money(self.amount + other.amount, self.currency)

    def __sub__(self, other: "Money") -> "Money":
        self._same(other)
        return Money(self.amount - other.amount, self.currency)

    def __neg__(self) -> "Money":
        return Money(-self.amount, self.currency)

    def __mul__(self, factor: int | Decimal) -> "Money":
        if isinstance(factor, float):
            raise TypeError("Money is never multiplied by a float")
        return Money(self.amount * factor, self.currency)

    def quantize(self, exp: Decimal = CENT, rounding: str = ROUND_HALF_UP) -> "Money":
        """Round to ``exp`` (cents by default) with an explicit rule (commercial rounding)."""
        return Money(self.amount.quantize(exp, rounding=rounding), self.currency)

    def __str__(self) -> str:
        return f"{self.amount} {self.currency}"


def from_cents(cents: int | Decimal) -> Decimal:
    """The amount in the currency of a sum in cents (exact)."""
    return Decimal(cents).scaleb(-2)
