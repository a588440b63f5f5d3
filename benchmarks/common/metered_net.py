"""A network wrapper that meters its calls: how many (a sampler's NFE) and the wall seconds spent in them."""

import time


class MeteredNet:
    """Forwards everything to `net`; counts the calls in `calls` and accumulates their wall seconds in `seconds`."""

    def __init__(self, net):
        self.net = net
        self.seconds = 0.0
        self.calls = 0

    def __getattr__(self, name):
        if name == 'net':
            raise AttributeError(name)
        return getattr(self.net, name)

    def __call__(self, *args, **kwargs):
        start = time.perf_counter()
        try:
            return self.net(*args, **kwargs)
        finally:
            self.seconds += time.perf_counter() - start
            self.calls += 1
