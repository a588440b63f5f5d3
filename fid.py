"""EDM-compatible entry point: `python fid.py calc --images=DIR --ref=NAME|NPZ` / `python fid.py ref ...`
(see edm_bdia.cli.fid)."""

from edm_bdia.cli.fid import main

if __name__ == '__main__':
    main()
