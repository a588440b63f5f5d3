"""Library exceptions -> one `Error:` line that names the command-line option, on every rank, never a traceback;
library warnings -> one `Warning:` line on rank 0 (naming the options for an `ArgumentWarning`), and library advice
(`ArgumentNote`) -> one `Note:` line on rank 0 that names the options.

Library code names its Python arguments (`ArgumentError('num_steps', ...)`); each command passes the map from
those names to its own options (`num_steps` -> `--steps`). Unexpected exceptions (bugs) get one line too, with a
hint; `EDM_BDIA_DEBUG=1` prints their traceback.
"""

import contextlib
import os
import sys
import traceback
import warnings

import click

from edm_bdia.errors import ArgumentError, ArgumentNote, ArgumentWarning

DEBUG_VARIABLE = 'EDM_BDIA_DEBUG'
# Exceptions whose message is complete: shown as they are.
EXPLAINED = (ValueError, OSError, click.ClickException)


def option_name(argument, options):
    """The command-line spelling of a library argument: `options[argument]`, else `--argument`."""
    return options.get(argument, f'--{argument}')


def describe(error, options):
    """One line for `error` in the words of a command whose options are named by `options`."""
    if isinstance(error, ArgumentError):
        return error.worded(lambda argument: option_name(argument, options))
    if isinstance(error, click.ClickException):
        return error.format_message()
    text = str(error).strip()
    if isinstance(error, OSError) and error.filename and error.strerror:
        text = f'{error.filename}: {error.strerror}'
    if isinstance(error, EXPLAINED):
        return text or type(error).__name__
    return f'{type(error).__name__}: {text} (an unexpected error; set {DEBUG_VARIABLE}=1 for the traceback)'


class Interrupted(click.ClickException):
    """Ctrl-C: one line, and the exit status of a process ended by SIGINT."""
    exit_code = 130


@contextlib.contextmanager
def command_errors(options, resumable=False):
    """Run a command body: any failure (on any rank) becomes `Error: <one line>` and exit status 1 on every
    rank, Ctrl-C one line (naming --resume for a `resumable` command) and status 130; the process group the body
    joined (if any) is left in every case. Nothing here imports torch, so that settings checked before the body
    loads it fail at once."""
    try:
        with warnings.catch_warnings():
            warnings.showwarning = _one_line_warnings(options)
            yield
    except (click.exceptions.Exit, click.ClickException):
        raise
    except KeyboardInterrupt:
        hint = ('; every file written so far is complete: rerun the same command with --resume to continue'
                if resumable else '')
        raise Interrupted(f'interrupted{hint}') from None
    except Exception as error:  # noqa: BLE001 -- every failure is one line
        _debug_traceback(error)
        raise click.ClickException(_failure_line(error, options)) from None
    finally:
        distributed = _distributed_if_imported()
        if distributed is not None:
            distributed.shutdown()


def _distributed_if_imported():
    """edm_bdia.distributed if the command imported it (a process group and a RankFailure need it), else None."""
    return sys.modules.get('edm_bdia.distributed')


def _failure_line(error, options):
    """One line for a failure; a RankFailure is worded from the failing rank's own exception, with its rank."""
    distributed = _distributed_if_imported()
    if distributed is None or not isinstance(error, distributed.RankFailure):
        return describe(error, options)
    if error.error is None:
        return error.message
    prefix = error.message.split(': ', 1)[0] + ': ' if error.message.startswith('rank ') else ''
    return prefix + describe(error.error, options)


def _one_line_warnings(options):
    """A `warnings.showwarning` that prints each library warning as one line on rank 0, above a running progress
    bar: an ArgumentNote as `Note:` on stdout with the arguments spelled as `options`, others (an unstable BDIA
    setting, latents far from noise) as `Warning:` on stderr."""
    def show(message, category, filename, lineno, file=None, line=None):
        import tqdm
        from edm_bdia.distributed import get_rank
        if get_rank() != 0:
            return
        spelled = message.worded(lambda argument: option_name(argument, options)) \
            if isinstance(message, ArgumentWarning) else message
        if isinstance(message, ArgumentNote):
            tqdm.tqdm.write(f'Note: {spelled}', file=sys.stdout)
        else:
            tqdm.tqdm.write(f'Warning: {spelled}', file=sys.stderr)
    return show


def _debug_traceback(error):
    if os.environ.get(DEBUG_VARIABLE):
        traceback.print_exception(error, file=sys.stderr)
