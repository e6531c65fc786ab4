"""The sans-I/O dispatch core.

It takes events (an incident created, a fix received, an offer answered, time passed) and the
current time, and returns decisions and commands (offer, cancel, persist, notify); it never
awaits, opens a socket or reads the clock by itself. The server, the day simulator and the
tests drive the same core.

Modules:
    clock     the injected :class:`~dispatch.core.clock.Clock` (system, fake) and the
              ISO 8601 conversions of timestamps
    policy    the incident policy (``data/policy.toml``): needs, quotas per 1-3-5 ring,
              timeouts, widening, points; loaded once and frozen
    states    the assignment state machine: one transition table
    ranking   who can reach an incident, and in which ring
    plan      whom to offer an incident to
    engine    events in, commands out: drives the modules above

Import from the modules; this package re-exports nothing, so importing one part never pulls
in the others.
"""
