"""NVlabs edm2-compatible entry point: `python generate_images.py ...` / `torchrun ... generate_images.py ...`
(see edm_bdia.cli.generate_images)."""

from edm_bdia.cli.generate_images import main

if __name__ == '__main__':
    main()
