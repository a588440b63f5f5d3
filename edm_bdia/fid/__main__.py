"""`python -m edm_bdia.fid calc|ref|refs ...`, the same command as fid.py and edm-bdia-fid."""

from edm_bdia.fid.cli import main

if __name__ == '__main__':
    main()
