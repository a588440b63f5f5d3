"""The FID errors: one complete line each, shown as is (no type name, no traceback).

Errors about one argument of the library (`reference`, `detector`, `method`) are also `ArgumentError`s, so a
command line can name its own option for that argument (edm_bdia.errors); the rest name the file or value.
"""

from edm_bdia.errors import ArgumentError


class FidError(ValueError):
    """An FID input or setting that cannot be used; the message says which one, what is wrong and what to do."""

    def format_message(self):  # read by edm_bdia.distributed.error_message, like click's exceptions
        return str(self)


class FidArgumentError(ArgumentError, FidError):
    """An FidError about the library argument `argument` (ArgumentError's wording: "reference x.npz: ...")."""
