"""The gallery's core hazards written for trio: the same races, trio's primitives."""

from __future__ import annotations

from examples.gallery import Example
from examples.trio import bank, counter, signal, transfer

EXAMPLES: list[Example] = [
    Example("trio-lost-update", "lost update on a shared counter (trio)",
            counter.lost_update, counter.lost_update_fixed, "assertion", runtime="trio"),
    Example("trio-double-spend", "check-then-act double spend on a balance (trio)",
            bank.double_spend, bank.double_spend_fixed, "assertion", runtime="trio"),
    Example("trio-lock-order-deadlock", "lock-order deadlock between two transfers (trio)",
            transfer.abba, transfer.abba_fixed, "deadlock", runtime="trio"),
    Example("trio-lost-wakeup", "lost wake-up: a cancelled consumer swallows a "
            "notification (trio)", signal.lost_wakeup, signal.lost_wakeup_fixed,
            "deadlock", runtime="trio", bound=3),
]
