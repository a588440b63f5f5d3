"""Train (or load from the cache) the solver study's digits network and print its held-out loss
(benchmarks/study/digits.py). Needs the `bench` extra (scikit-learn).

    python -m benchmarks.digits_net [--quick]
"""

import argparse
import time

from .study.digits import cache_dir, digit_classifier, held_out_loss, load_digits_split, load_or_train


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--quick', action='store_true', help='a few hundred iterations (smoke test)')
    args = parser.parse_args()
    start = time.time()
    net = load_or_train(quick=args.quick)
    _, _, held_x, held_y = load_digits_split()
    accuracy = (digit_classifier()(held_x) == held_y).double().mean().item()
    print(f'digits net ready in {time.time() - start:.0f} s; held-out EDM loss {held_out_loss(net):.4f}; '
          f'classifier held-out accuracy {accuracy:.3f}; cache {cache_dir()}')


if __name__ == '__main__':
    main()
