"""Base class of every FID error: its message is complete and is shown as is (no type name, no traceback)."""


class FidError(ValueError):
    """An FID input or setting that cannot be used; the message says which one, what is wrong and what to do."""

    def format_message(self):  # read by torch_utils.distributed.error_message, like click's exceptions
        return str(self)
