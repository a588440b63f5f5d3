"""NVlabs-compatible entry point: `python generate.py ...` / `torchrun ... generate.py ...`
(see edm_bdia.cli.generate)."""

from edm_bdia.cli.generate import main

if __name__ == '__main__':
    main()
