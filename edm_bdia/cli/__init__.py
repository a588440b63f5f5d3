"""The command lines: `generate`, `invert`, `edit`, `fid`, `presets` (and `python -m edm_bdia ...`). They parse
options, apply presets, call the library and turn its plain exceptions into one `Error:` line naming the option, and
its warnings into one `Warning:` or `Note:` line (`errors`)."""
