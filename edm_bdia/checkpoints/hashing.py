"""A checkpoint's identity: the sha256 of its file, computed while the file is read for loading, or of a
module's parameters and buffers for a network without a file (the built-in model, a module passed in); see
docs/checkpoints.md, 'Identity of a checkpoint'."""

import hashlib

import torch


def sha256_state(module):
    """sha256 over the names, dtypes, shapes and bytes of a module's parameters and buffers."""
    digest = hashlib.sha256()
    for name, tensor in sorted(module.state_dict().items()):
        tensor = tensor.detach().cpu().contiguous()
        digest.update(f'{name}:{tensor.dtype}:{tuple(tensor.shape)};'.encode())
        digest.update(tensor.reshape(-1).view(dtype=torch.uint8).numpy().tobytes())
    return digest.hexdigest()


class HashingReader:
    """A binary file wrapper for unpickling that feeds every byte read to a sha256.

    `peek` looks ahead without consuming (the bytes are hashed when read); `file_sha256()` reads whatever the
    reader has not consumed yet, so it returns the hash of the whole file after one pass.
    """

    def __init__(self, file):
        self._file = file
        self._digest = hashlib.sha256()

    def read(self, size=-1):
        data = self._file.read(size)
        self._digest.update(data)
        return data

    def readinto(self, buffer):
        count = self._file.readinto(buffer)
        self._digest.update(memoryview(buffer)[:count])
        return count

    def readline(self, size=-1):
        line = self._file.readline(size)
        self._digest.update(line)
        return line

    def peek(self, size=1):
        return self._file.peek(size)

    def file_sha256(self, chunk_size=1 << 20):
        while self.read(chunk_size):
            pass
        return self._digest.hexdigest()
