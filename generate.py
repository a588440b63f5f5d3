"""NVlabs-style entry point: `python generate.py --outdir=out ...` runs `edm_bdia.generate` (see its --help)."""

from edm_bdia.generate import main

if __name__ == '__main__':
    main()
