"""`python -m edm_bdia generate|generate-images|invert|edit|fid|presets ...` (see edm_bdia.cli.main)."""

from edm_bdia.cli.main import main

if __name__ == '__main__':
    main()
