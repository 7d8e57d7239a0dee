"""The one error hierarchy of caturactl.

Every error a user can cause or meet is a ``CaturactlError``; the CLI turns each kind into an
exit code and one line of text (see ``caturactl.cli``). Anything else reaching the CLI is a bug.
"""

from __future__ import annotations


class CaturactlError(Exception):
    """Base class. ``where`` names the file:line:field (or order and field) the error is about."""

    exit_code = 1

    def __init__(self, message: str, *, where: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.where = where

    def __str__(self) -> str:
        return f"{self.where}: {self.message}" if self.where else self.message


class InputError(CaturactlError):
    """Bad data from a user, a file or a remote answer; nothing was changed."""

    exit_code = 65  # sysexits EX_DATAERR


class ConfigError(CaturactlError):
    """caturactl.toml, jobs.toml, secrets or the environment are wrong or incomplete."""

    exit_code = 78  # EX_CONFIG


class RemoteError(CaturactlError):
    """A remote system (Amazon, a server, the database) refused or could not be reached."""

    exit_code = 69  # EX_UNAVAILABLE


class ThrottledError(RemoteError):
    """The remote side keeps refusing for rate reasons; run again later, nothing is lost."""

    exit_code = 75  # EX_TEMPFAIL


class StateError(CaturactlError):
    """An operation that the current state of an order, ticket or customer does not allow."""

    exit_code = 70


class ConflictError(StateError):
    """Another run (a job, a person) moved the same thing first: its state in the database is not
    the one this run read. Nothing of this move was written; the next run sees the new state."""


class NotFoundError(InputError):
    """A named order, customer or ticket does not exist."""

    exit_code = 66  # EX_NOINPUT


class NotFound(NotFoundError):
    """A purchase order, line or return that does not exist for the partner asking (another
    partner's counts as not existing): the portal answers 404, never 403."""


class RejectedError(RemoteError):
    """The remote side understood the request and refused it as invalid (HTTP 400, SMTP 5xx,
    an unknown carrier code); sending it again unchanged will not help, a person must look."""

    exit_code = 65  # EX_DATAERR: the data we sent is wrong


class RefusedError(RemoteError):
    """The remote side answered and did not take the request, for now (SMTP 4xx such as
    greylisting, an HTTP error answer to a request that cannot have acted): nothing arrived, so
    a send it answered is not in doubt, and trying again later may help."""

    exit_code = 69


class InDoubtError(RemoteError):
    """A crash interrupted an earlier send after its point of no return, and the remote side
    cannot tell whether it arrived (an e-mail, a file the location may have read and deleted):
    sending again could deliver it twice, so a person looks and decides."""

    exit_code = 69
