"""Crash-safe files: every file is written under a temporary name and renamed (`atomic`), and the image files
the package writes and reads (`images`: PNG, grid PNG, OpenAI-style npz), and where downloads are kept (`cache`)."""

from edm_bdia.files.atomic import (TEMP_SUFFIX, atomic_write, check_writable_file, probe_write, remove_stale_temp_files,
                                   sha256_file)

__all__ = ['TEMP_SUFFIX', 'atomic_write', 'check_writable_file', 'probe_write', 'remove_stale_temp_files',
           'sha256_file']
