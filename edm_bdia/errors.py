"""The package's exception for a bad argument, and its warning for advice about arguments, so that each front end
can name arguments its own way.

Library code raises `ArgumentError('sigma_min', 'must be below `sigma_max` = 1, got 100')`: in Python it reads
"sigma_min must be below sigma_max = 1, got 100" and is a ValueError; the command line spells every argument as
its option and prints "Error: --sigma_min must be below --sigma_max = 1, got 100". Other arguments named in the
problem are written between backticks. `ArgumentWarning` and `ArgumentNote` word their text the same way.
"""

import re

_ARGUMENT = re.compile(r'`(\w+)`')


def _spelled(text, spell):
    """`text` with every argument written between backticks as `spell(name)`."""
    return _ARGUMENT.sub(lambda match: spell(match.group(1)), text)


class ArgumentError(ValueError):
    """A bad value for the argument `argument`; `problem` says what is wrong and what to do."""

    def __init__(self, argument, problem):
        self.argument = argument
        self.problem = problem
        super().__init__(self.worded(lambda name: name))

    def worded(self, spell):
        """The message with every argument name written as `spell(name)` (e.g. a command-line option)."""
        return f'{spell(self.argument)} {_spelled(self.problem, spell)}'

    def __reduce__(self):  # picklable, so that a failure on one rank can be reported on the others
        return type(self), (self.argument, self.problem)


class ArgumentWarning(UserWarning):
    """A setting that works but is most likely not what was meant (arguments named between backticks in `text`).
    The command line prints it as one `Warning:` line with the arguments spelled as its options."""

    def __init__(self, text):
        self.text = text
        super().__init__(self.worded(lambda name: name))

    def worded(self, spell):
        return _spelled(self.text, spell)


class ArgumentNote(ArgumentWarning):
    """Advice, not a problem: the run works, and other arguments (named between backticks in `text`) would make it
    cheaper. The command line prints it as one `Note:` line."""
