"""NVlabs EDM2-compatible entry point: `python calculate_metrics.py calc --images=DIR --ref=img512` /
`gen --net=PKL --ref=...` / `ref --data=DIR --dest=PKL` (see edm_bdia.cli.calculate_metrics)."""

from edm_bdia.cli.calculate_metrics import main

if __name__ == '__main__':
    main()
