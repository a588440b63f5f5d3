"""Calculate FID (EDM-compatible): ``python fid.py calc --images=DIR --ref=NAME|NPZ`` / ``python fid.py ref ...``."""

from edm_bdia.fid.cli import main

if __name__ == '__main__':
    main()
