"""The package's one exception for a bad argument, so that each front end can name it its own way.

Library code raises `ArgumentError('sigma_min', 'must be below sigma_max = 1, got 100')`; in Python it reads
"sigma_min must be below sigma_max = 1, got 100" and is a ValueError; the command line maps the argument name to
its option and prints "Error: --sigma_min must be below ...".
"""


class ArgumentError(ValueError):
    """A bad value for the argument `argument`; `problem` says what is wrong and what to do."""

    def __init__(self, argument, problem):
        super().__init__(f'{argument} {problem}')
        self.argument = argument
        self.problem = problem
