"""Package data: the bundled demo model (installed as `var_edit_assets`; see editing.resources)."""
