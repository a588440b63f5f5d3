"""The command lines: `generate`, `fid`, `presets` (and `python -m edm_bdia ...`). They parse options, apply
presets, call the library and turn its plain exceptions into one `Error:` line naming the option (`errors`)."""
